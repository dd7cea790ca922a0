"""Triggers: cron schedules and event-bus subjects start pipelines, with a cooldown and a
maximum frequency; every run they start records the trigger (``pipeline_runs.trigger``).

``TriggerLoop.tick()`` does one pass (tests drive it with a fake clock);
``TriggerLoop.start()`` runs it in a daemon thread until ``stop()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from ghaf.errors import InvalidInputError
from ghaf.events.base import Event
from ghaf.pipelines.base import Executor, PipelineRun
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.records import runs_since
from ghaf.platform import Platform
from ghaf.security.identity import Actor

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time`` or a fake)."""


@dataclass
class Limits:
    """At most one run per ``cooldown_s``, and at most ``max_runs`` per ``window_s``."""

    cooldown_s: float = 0.0
    max_runs: int | None = None
    window_s: float = 3600.0


@dataclass
class CronTrigger:
    """Start ``pipeline()`` on a cron schedule (``*/5 * * * *``); missed ticks coalesce."""

    name: str
    schedule: str
    pipeline: Callable[[], Pipeline]
    params: Mapping[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    _next: float | None = None

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.schedule):
            raise InvalidInputError(
                f"cron schedule {self.schedule!r} of trigger {self.name!r} is not valid",
                hint="use five fields: minute hour day-of-month month day-of-week",
            )

    @property
    def key(self) -> str:
        return f"cron:{self.name}"

    def due(self, now: float) -> bool:
        """Whether a scheduled time has passed since the last check (the first arms it)."""
        if self._next is None:
            self._next = float(croniter(self.schedule, now).get_next(float))
            return False
        if now < self._next:
            return False
        self._next = float(croniter(self.schedule, now).get_next(float))
        return True


@dataclass
class EventTrigger:
    """Start ``pipeline()`` when an event on ``subject`` arrives whose data has ``match``'s
    values (e.g. ``drift.detected`` with ``{"model": "fraud"}``); ``params`` may depend on
    the event."""

    name: str
    subject: str
    pipeline: Callable[[], Pipeline]
    match: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] | Callable[[Event], Mapping[str, Any]] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    @property
    def key(self) -> str:
        return f"event:{self.subject}:{self.name}"

    def matches(self, event: Event) -> bool:
        return all(event.data.get(k) == v for k, v in self.match.items())

    def params_for(self, event: Event) -> dict[str, Any]:
        return dict(self.params(event) if callable(self.params) else self.params)


Trigger = CronTrigger | EventTrigger


@dataclass(frozen=True)
class Decision:
    """What one trigger did on one occasion: fired (with the run) or skipped (and why)."""

    trigger: str
    fired: bool
    reason: str
    run: PipelineRun | None = None


def allowed_now(platform: Platform, key: str, limits: Limits, now: float) -> tuple[bool, str]:
    """Whether the trigger keyed ``key`` may start a run at ``now`` (epoch seconds) under
    ``limits``, from the runs recorded with that trigger key: (allowed, why)."""
    span = max(limits.cooldown_s, limits.window_s if limits.max_runs is not None else 0.0)
    started = runs_since(platform, key, datetime.fromtimestamp(now - span, UTC))
    times = [s.timestamp() for s in started]
    if limits.cooldown_s and times and now - max(times) < limits.cooldown_s:
        return False, f"cooldown: last run {now - max(times):.0f}s ago < {limits.cooldown_s:g}s"
    if limits.max_runs is not None:
        recent = sum(1 for t in times if now - t < limits.window_s)
        if recent >= limits.max_runs:
            return False, f"max frequency: {recent} runs in {limits.window_s:g}s"
    return True, "fired"


class TriggerLoop:
    """Evaluates triggers against a clock and the event bus, and runs their pipelines."""

    def __init__(
        self,
        platform: Platform,
        actor: Actor,
        triggers: Sequence[Trigger],
        *,
        clock: Clock = time.time,
        executor: Executor | None = None,
        runner: Callable[..., PipelineRun] | None = None,
    ) -> None:
        from ghaf.pipelines.runner import run_pipeline

        self.platform, self.actor, self.clock = platform, actor, clock
        self.triggers = list(triggers)
        self.executor = executor
        self._run = runner or run_pipeline
        self._events: deque[tuple[EventTrigger, Event]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscriptions = [
            platform.events.subscribe(t.subject, self._handler(t))
            for t in self.triggers
            if isinstance(t, EventTrigger)
        ]
        now = clock()
        for trigger in self.triggers:
            if isinstance(trigger, CronTrigger):
                trigger.due(now)

    def _handler(self, trigger: EventTrigger) -> Callable[[Event], None]:
        def handle(event: Event) -> None:
            if trigger.matches(event):
                with self._lock:
                    self._events.append((trigger, event))

        return handle

    def allowed(self, trigger: Trigger, now: float) -> tuple[bool, str]:
        """Whether the trigger may start a run now, from the runs it already started."""
        return allowed_now(self.platform, trigger.key, trigger.limits, now)

    def _fire(self, trigger: Trigger, params: dict[str, Any], now: float) -> Decision:
        ok, reason = self.allowed(trigger, now)
        if not ok:
            log.info("trigger %s skipped: %s", trigger.key, reason)
            return Decision(trigger.key, False, reason)
        run = self._run(
            self.platform,
            self.actor,
            trigger.pipeline(),
            params=params or None,
            executor=self.executor,
            trigger=trigger.key,
        )
        log.info("trigger %s started run %s (%s)", trigger.key, run.id, run.status)
        return Decision(trigger.key, True, reason, run)

    def tick(self) -> list[Decision]:
        """One pass: due cron triggers, then the events received since the last pass."""
        now = self.clock()
        decisions = [
            self._fire(t, dict(t.params), now)
            for t in self.triggers
            if isinstance(t, CronTrigger) and t.due(now)
        ]
        while True:
            with self._lock:
                if not self._events:
                    break
                trigger, event = self._events.popleft()
            decisions.append(self._fire(trigger, trigger.params_for(event), self.clock()))
        return decisions

    def start(self, interval_s: float = 1.0) -> threading.Thread:
        """Tick every ``interval_s`` in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:  # a failing trigger must not stop the others
                    log.exception("trigger loop pass failed")
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="ghaf-triggers", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread (after its current pass) and unsubscribe from the bus."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []
