"""Triggers: cron with a fake clock, events on the in-process bus; cooldown and maximum
frequency enforced from the runs recorded with the trigger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from ghaf.errors import InvalidInputError
from ghaf.pipelines import Pipeline, list_runs
from ghaf.pipelines.examples import make_table
from ghaf.pipelines.records import runs_since
from ghaf.pipelines.triggers import CronTrigger, EventTrigger, Limits, TriggerLoop
from ghaf.platform import Platform


def _pipeline() -> Pipeline:
    pipeline = Pipeline("retrain-fraud")
    pipeline.add(make_table, rows=10, seed=1)
    return pipeline


class FakeClock:
    def __init__(self) -> None:
        # One second past the current minute boundary: cron arithmetic stays exact, and the
        # clock is at most a minute behind the real time runs are recorded with, so the
        # cooldown checks below hold whatever the second the test starts at.
        self.now = float(int(time.time()) // 60 * 60) + 1

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_cron_fires_on_schedule_with_cooldown(platform: Platform) -> None:
    clock = FakeClock()
    trigger = CronTrigger("every-minute", "* * * * *", _pipeline, limits=Limits(cooldown_s=150))
    loop = TriggerLoop(platform, platform.admin(), [trigger], clock=clock)
    assert loop.tick() == []  # not yet a minute
    clock.advance(60)
    first = loop.tick()
    assert [d.fired for d in first] == [True]
    assert first[0].run is not None and first[0].run.trigger == "cron:every-minute"
    clock.advance(60)
    skipped = loop.tick()
    assert [d.fired for d in skipped] == [False] and "cooldown" in skipped[0].reason
    clock.advance(10)
    assert loop.tick() == []  # between schedule times nothing is due
    clock.advance(120)  # next minute, 190 s after the run
    final = loop.tick()
    assert [d.fired for d in final] == [True], [d.reason for d in final]
    since = datetime.now(UTC) - timedelta(hours=1)
    assert len(runs_since(platform, "cron:every-minute", since)) == 2
    loop.stop()


def test_drift_event_starts_retraining_at_most_n_per_window(platform: Platform) -> None:
    clock = FakeClock()
    trigger = EventTrigger(
        "fraud",
        "drift.detected",
        _pipeline,
        match={"model": "fraud"},
        limits=Limits(max_runs=2, window_s=3600),
    )
    loop = TriggerLoop(platform, platform.admin(), [trigger], clock=clock)
    platform.events.publish("drift.detected", {"model": "churn"})
    assert loop.tick() == []  # another model's drift
    for _ in range(3):
        platform.events.publish("drift.detected", {"model": "fraud"})
    decisions = loop.tick()
    assert [d.fired for d in decisions] == [True, True, False]
    assert "max frequency: 2 runs" in decisions[2].reason
    runs = list_runs(platform, "retrain-fraud")
    assert [r.trigger for r in runs] == ["event:drift.detected:fraud"] * 2
    clock.advance(3661)  # past the window (the fake clock may start a minute behind)
    platform.events.publish("drift.detected", {"model": "fraud"})
    assert [d.fired for d in loop.tick()] == [True]
    loop.stop()
    platform.events.publish("drift.detected", {"model": "fraud"})
    assert loop.tick() == []  # unsubscribed


def test_loop_runs_in_a_thread(platform: Platform) -> None:
    trigger = EventTrigger("fraud", "drift.detected", _pipeline)
    loop = TriggerLoop(platform, platform.admin(), [trigger])
    loop.start(interval_s=0.05)
    platform.events.publish("drift.detected", {"model": "fraud"})
    deadline = time.monotonic() + 60
    while not list_runs(platform, "retrain-fraud") and time.monotonic() < deadline:
        time.sleep(0.1)
    loop.stop()
    assert len(list_runs(platform, "retrain-fraud")) == 1


def test_bad_cron_schedule_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="cron schedule 'every day'"):
        CronTrigger("nightly", "every day", _pipeline)
