"""The closed loop: monitor -> alert -> incident -> retraining pipeline -> gates -> approval
-> canary -> promote or roll back.

A ``drift.detected`` or ``model.quality`` event (the monitors publish one per version that
breached, beside the alert that opened the incident) on a deployment with a retraining
policy fires its trigger: at most once per cooldown and ``max_runs`` per window (the
pipelines' trigger limits, one trigger key per deployment), and never while a run of the
deployment is under way. The policy's pipeline runs (``until``, ``champion`` and
``deployment`` are passed when it declares them: it builds a fresh training set from the
feature store up to now, trains, evaluates against the champion, gates and registers; its
step named ``register`` answers ``{"ref": ...}``); the gate policies attached to the model
run on the registered version; where the release policy wants an approval the run waits
for it; then the candidate is deployed beside the champion at no traffic and ramped by the
policy's canary plan, evaluated every ``interval_s`` until it is promoted or rolled back.
Each hop is a governed ``deployment.retrain_*`` operation and an entry, with its time, on
the alert's incident (``ghaf incidents show``).

    with RetrainLoop(platform, actor) as loop:    # subscribes to the monitors' events
        run_due_monitors(platform, actor)         # publishes what breached
        loop.tick()                               # acts on it; advances runs under way

``now`` lets a replay drive it on its own clock (the demo), and ``data_time`` maps that
clock to the data's time (the ``until`` of the training set).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import select

from ghaf.errors import GhafError, NotFoundError, PermissionDeniedError, PolicyViolationError
from ghaf.events.base import Event
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.pipelines.base import Executor, PipelineRun
from ghaf.pipelines.triggers import allowed_now
from ghaf.platform import Platform
from ghaf.retraining.hops import deploy_candidate, open_run, record_hop, record_registration
from ghaf.retraining.policy import allowed_pipeline, get_retrain_policy
from ghaf.retraining.records import (
    ACTIVE,
    AWAITING,
    CANARY,
    FAILED,
    PROMOTED,
    ROLLED_BACK,
    SKIPPED,
    SUBJECTS,
    TRAINING,
    RetrainPolicy,
    RetrainRun,
    to_run,
)
from ghaf.retraining.tables import RetrainRunRow
from ghaf.security.identity import Actor

REGISTER_STEP = "register"
"""The pipeline step whose output names the registered version (``{"ref": ...}``)."""
GATE_STEP = "gate"
"""The pipeline step that gates the candidate (its failure is the gate's refusal)."""
STALE_S = 6 * 3600.0
"""A run still training without a pipeline run after this long was abandoned (its loop
stopped mid-run): it no longer holds the deployment."""
CATCH_UP_S = 86_400.0
"""How far back a pass reads the monitors' stored breaches for events it missed."""
_log = get_logger(__name__)


def _stale(run: RetrainRun) -> bool:
    """Whether a run last moved more than :data:`STALE_S` ago (by the wall clock: a
    replay's clock says nothing of whether a loop is still running it)."""
    return run.updated_at < utcnow() - timedelta(seconds=STALE_S)


class RetrainLoop:
    """Acts on the monitors' events for the platform's project and advances its runs.

    Args:
        executor: where the pipelines' steps run (default: the settings' executor).
        data_time: the data's time at a moment of the loop's clock (default: the same).
    """

    def __init__(
        self,
        platform: Platform,
        actor: Actor,
        *,
        executor: Executor | None = None,
        data_time: Callable[[datetime], datetime] | None = None,
    ) -> None:
        self.platform, self.actor, self.executor = platform, actor, executor
        self.data_time = data_time or (lambda moment: moment)
        self._events: deque[Event] = deque()
        self._lock = threading.Lock()
        self._subscriptions = [platform.events.subscribe(s, self._receive) for s in SUBJECTS]

    def _missed(self, now: datetime) -> list[Event]:
        """Breaches of the last :data:`CATCH_UP_S` from the monitors' stored results: what
        a loop that was not running (or a bus that was down) did not deliver. Acting on
        an event records its id, so one delivered twice is acted on once; a policy set
        within a day of a breach acts on it (its cooldown and limits still hold)."""
        from ghaf.monitoring.monitors import breach_events

        return breach_events(self.platform, now - timedelta(seconds=CATCH_UP_S))

    def _receive(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def close(self) -> None:
        """Stop receiving events (runs under way stay recorded; a later loop advances them)."""
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []

    def __enter__(self) -> RetrainLoop:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # One pass ------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[RetrainRun]:
        """Act on the events received since the last pass, then advance every run under
        way; the runs it touched (as they stand now). A run that fails is logged and
        recorded; a refusal of the loop's actor is raised."""
        start, began = now or utcnow(), time.monotonic()

        def clock() -> datetime:  # the pass's clock moves on as its work takes time
            return start + timedelta(seconds=time.monotonic() - began)

        touched: dict[int, RetrainRun] = {}
        for event in self._missed(start):
            found = self._guarded(functools.partial(self.handle, event, clock()), event.id)
            if found is not None:
                touched[found.id] = found
        while True:
            with self._lock:
                if not self._events:
                    break
                event = self._events.popleft()
            found = self._guarded(functools.partial(self.handle, event, clock()), event.id)
            if found is not None:
                touched[found.id] = found
        for run in self.active_runs():
            advanced = self._guarded(functools.partial(self.advance, run, clock()), str(run.id))
            if advanced is not None and advanced != run:
                touched[advanced.id] = advanced
        return list(touched.values())

    def _guarded(self, act: Callable[[], RetrainRun | None], what: str) -> RetrainRun | None:
        try:
            return act()
        except PermissionDeniedError:
            raise
        except GhafError as exc:
            _log.warning("retraining loop step failed", what=what, error=exc.headline)
            return None

    def active_runs(self) -> list[RetrainRun]:
        """The project's runs under way (training, awaiting approval, canary), oldest first."""
        with self.platform.read_session() as session:
            rows = session.execute(
                select(RetrainRunRow)
                .where(RetrainRunRow.project == self.platform.default_project)
                .where(RetrainRunRow.status.in_(ACTIVE))
                .order_by(RetrainRunRow.id)
            ).scalars()
            return [to_run(row) for row in rows]

    # An alert arrives ----------------------------------------------------------------

    def handle(self, event: Event, now: datetime) -> RetrainRun | None:
        """Act on one monitor event: None when no enabled policy of the project's
        deployment wants it (or it was acted on before), else the run it fired or skipped."""
        data = event.data
        if event.subject not in SUBJECTS or data.get("project") != self.platform.default_project:
            return None
        deployment = str(data.get("deployment") or "")
        try:
            policy = get_retrain_policy(self.platform, deployment)
        except NotFoundError:
            return None
        if not policy.enabled or event.subject not in policy.alerts or self._seen(event.id):
            return None
        model_version = str(data["model_version"]) if data.get("model_version") else None
        reason = self._why_not(policy, deployment, now)
        run = open_run(
            self.platform,
            self.actor,
            deployment,
            event=event.id,
            subject=event.subject,
            model_version=model_version,
            incident=self._incident(event, deployment, model_version),
            trigger=policy.trigger_key,
            status=SKIPPED if reason else TRAINING,
            reason=reason or f"{event.subject} on {model_version}: running {policy.pipeline}",
            until=self.data_time(now),
            champion=self._champion(deployment),
            at=now,
        )
        if run.status == SKIPPED:
            return run
        return self._retrain(run, policy, now)

    def _why_not(self, policy: RetrainPolicy, deployment: str, now: datetime) -> str | None:
        busy = [
            r
            for r in self.active_runs()
            if r.deployment == deployment
            and not (r.status == TRAINING and not r.pipeline_run and _stale(r))
        ]
        if busy:
            return f"retraining run {busy[0].id} of {deployment} is under way ({busy[0].status})"
        # The limits bound how often pipelines run: by the wall clock, as their runs' start
        # times are recorded, whatever clock a replay drives the loop on.
        allowed, why = allowed_now(self.platform, policy.trigger_key, policy.limits, time.time())
        return None if allowed else why

    def _seen(self, event_id: str) -> bool:
        with self.platform.read_session() as session:
            return (
                session.execute(
                    select(RetrainRunRow.id).where(RetrainRunRow.event == event_id)
                ).first()
                is not None
            )

    def _incident(self, event: Event, deployment: str, model_version: str | None) -> str | None:
        from ghaf.alerts.base import fingerprint
        from ghaf.incidents.records import open_incident_of

        prints = [str(f) for f in event.data.get("alerts") or []]
        if model_version:
            labels = {"deployment": deployment, "model_version": model_version}
            prints.append(fingerprint(event.subject, labels))
        found = open_incident_of(self.platform, prints)
        return found.number if found is not None else None

    def _champion(self, deployment: str) -> str | None:
        from ghaf.serving.deployments import get_deployment

        try:
            record = get_deployment(self.platform, deployment)
        except NotFoundError:
            return None
        live = [ref for ref, weight in record.models.items() if weight > 0]
        return live[0] if len(live) == 1 else None

    # Retrain, register, gate ---------------------------------------------------------

    def _retrain(self, run: RetrainRun, policy: RetrainPolicy, now: datetime) -> RetrainRun:
        from ghaf.pipelines.runner import run_pipeline

        try:
            pipeline = allowed_pipeline(self.platform, policy.pipeline)
        except GhafError as exc:
            return self._fail(run, "retrain", f"pipeline {policy.pipeline}: {exc.headline}", now)
        given = {
            "until": run.until.isoformat() if run.until else None,
            "champion": run.champion,
            "deployment": run.deployment,
        }
        params = {**policy.params}
        params.update({k: v for k, v in given.items() if k in pipeline.params and v is not None})
        began = time.monotonic()
        result = run_pipeline(
            self.platform,
            self.actor,
            pipeline,
            params=params,
            executor=self.executor,
            trigger=run.trigger,
        )
        return self._after_pipeline(run, result, now + timedelta(seconds=time.monotonic() - began))

    def _after_pipeline(self, run: RetrainRun, result: PipelineRun, now: datetime) -> RetrainRun:
        from ghaf.pipelines.runner import output_of

        details: dict[str, Any] = {
            "pipeline": result.pipeline,
            "pipeline_run": result.id,
            "pipeline_status": result.status,
            "started_at": result.started_at.isoformat(),
            "finished_at": result.finished_at.isoformat() if result.finished_at else None,
            "seconds": result.duration_s,
            "steps": {s.step: s.status for s in result.steps},
        }
        failed = next((s for s in result.steps if s.status == "failed"), None)
        if result.status != "succeeded":
            details["error"] = (failed.error if failed else result.error) or result.status
            hop = record_hop(
                self.platform, self.actor, run.deployment, run.id, "retrain", details,
                at=now, pipeline_run=result.id,
            )  # fmt: skip
            if failed is not None and failed.step == GATE_STEP:
                reason = f"the pipeline's gate refused the candidate: {failed.error}"
                gate = {"source": "pipeline", "passed": False, "reason": failed.error}
                return record_hop(
                    self.platform, self.actor, run.deployment, run.id, "gate", gate, at=now,
                    status=FAILED, reason=reason,
                )  # fmt: skip
            why = f"pipeline run {result.id} {result.status}: {details['error']}"
            return self._fail(hop, "retrain", why, now)
        record_hop(
            self.platform, self.actor, run.deployment, run.id, "retrain", details, at=now,
            pipeline_run=result.id,
        )  # fmt: skip
        try:
            registered = output_of(self.platform, result, REGISTER_STEP)
            candidate = str(registered["ref"])
        except (GhafError, KeyError, TypeError):
            why = f"the pipeline has no step {REGISTER_STEP!r} answering {{'ref': ...}}"
            return self._fail(run, "register", why, now)
        verdict = self._pipeline_gate(result)
        return record_registration(
            self.platform, self.actor, run.deployment, run.id, candidate, verdict, at=now
        )

    def _pipeline_gate(self, result: PipelineRun) -> dict[str, Any] | None:
        from ghaf.pipelines.runner import output_of

        if not any(s.step == GATE_STEP for s in result.steps):
            return None
        try:
            found = output_of(self.platform, result, GATE_STEP)
        except GhafError:
            return None
        return dict(found) if isinstance(found, dict) else {"output": str(found)}

    def _fail(self, run: RetrainRun, kind: str, reason: str, now: datetime) -> RetrainRun:
        return record_hop(
            self.platform, self.actor, run.deployment, run.id, kind, {"failed": reason},
            at=now, status=FAILED, reason=reason,
        )  # fmt: skip

    # Runs under way ------------------------------------------------------------------

    def advance(self, run: RetrainRun, now: datetime) -> RetrainRun:
        """Move one run on: a registered candidate to its approval or deployment and
        canary; a canary to its next decision when one is due."""
        if run.status == CANARY:
            return self._evaluate(run, now)
        if run.candidate is None:
            if run.status == TRAINING and not run.pipeline_run and _stale(run):
                return self._fail(run, "retrain", "abandoned before its pipeline ran", now)
            return run
        try:
            policy = get_retrain_policy(self.platform, run.deployment)
        except NotFoundError:
            return self._fail(run, "deploy", "the deployment's retraining policy was deleted", now)
        return self._release(run, policy, now)

    def _release(self, run: RetrainRun, policy: RetrainPolicy, now: datetime) -> RetrainRun:
        """Deploy the candidate and start its canary, once the release policy lets it."""
        from ghaf.registry.release import get_release_policy, missing_requirements
        from ghaf.registry.service import get_model_version

        assert run.candidate is not None  # nosec B101
        version = get_model_version(self.platform, run.candidate)
        if version.stage == "archived":  # how a person turns a waiting candidate down
            why = f"{run.candidate} was archived by a person: not deployed"
            return self._fail(run, "approval", why, now)
        release = get_release_policy(self.platform, version.project).policy
        missing = (
            missing_requirements(self.platform, version, release, evaluate_gates=False)
            if release.protect_deployments
            else []
        )
        if missing:
            if run.status == AWAITING:
                return run
            asked = {
                "candidate": run.candidate,
                "requested": True,
                "missing": missing,
                "how": f"ghaf models approve {run.candidate} (by someone other than its author)",
            }
            return record_hop(
                self.platform, self.actor, run.deployment, run.id, "approval", asked, at=now,
                status=AWAITING, reason="the release policy requires: " + "; ".join(missing),
            )  # fmt: skip
        if run.status == AWAITING:
            granted = {"candidate": run.candidate, "granted": True, "by": list(version.approvals)}
            run = record_hop(
                self.platform, self.actor, run.deployment, run.id, "approval", granted, at=now,
                status=TRAINING, reason="approved",
            )  # fmt: skip
        try:
            run = deploy_candidate(self.platform, self.actor, run.deployment, run.id, at=now)
        except PolicyViolationError as exc:  # refused and audited; the run ends, saying why
            return self._fail(run, "deploy", f"the release policy refused it: {exc.headline}", now)
        return self._start_canary(run, policy, now)

    def _start_canary(self, run: RetrainRun, policy: RetrainPolicy, now: datetime) -> RetrainRun:
        from ghaf.experiments.canary import start_canary

        assert run.candidate is not None  # nosec B101
        name = f"{run.deployment}-retrain-{run.id}"[:128]
        plan = policy.rollout
        try:
            canary = start_canary(
                self.platform, self.actor, name, run.deployment, run.candidate, plan, now=now
            )
        except PermissionDeniedError:
            raise
        except GhafError as exc:
            return self._fail(run, "canary", f"the canary did not start: {exc.headline}", now)
        started = {
            "canary": canary.name,
            "action": "start",
            "champion": canary.champion,
            "candidate": canary.candidate,
            "weight": canary.weight,
            "steps": list(plan.steps),
        }
        return record_hop(
            self.platform, self.actor, run.deployment, run.id, "canary", started, at=now,
            status=CANARY, reason=f"canary {canary.name} at {canary.weight:g}%",
            canary=canary.name, champion=canary.champion,
            next_check_at=now + timedelta(seconds=plan.interval_s),
        )  # fmt: skip

    def _evaluate(self, run: RetrainRun, now: datetime) -> RetrainRun:
        """One canary decision when due; the end of the run when it is final."""
        from ghaf.experiments.canary import evaluate_canary, get_canary
        from ghaf.experiments.canary_records import FINAL

        assert run.canary is not None  # nosec B101
        canary = get_canary(self.platform, run.canary)
        if canary.status not in FINAL:
            due = self._next_check(run)
            if due is not None and now < due:
                return run
            decision = evaluate_canary(self.platform, self.actor, run.canary, now=now)
            details = {
                "canary": run.canary,
                "action": decision.action,
                "canary_status": decision.status,
                "step": decision.step,
                "weight": decision.weight,
                "reasons": decision.reasons[:6],
                "window_end": decision.window_end.isoformat() if decision.window_end else None,
                "decided_by": decision.actor,
            }
            interval = canary.rollout.interval_s
            said = f"canary {decision.action}: " + "; ".join(decision.reasons[:2])
            run = record_hop(
                self.platform, self.actor, run.deployment, run.id, "canary", details,
                at=decision.at, reason=said, next_check_at=now + timedelta(seconds=interval),
            )  # fmt: skip
            canary = get_canary(self.platform, canary.name)
        if canary.status not in FINAL:
            return run
        promoted = canary.status == "promoted"
        end = {
            "canary": canary.name,
            "candidate": canary.candidate,
            "champion": canary.champion,
            "reason": canary.reason,
            "by": canary.updated_by,
        }
        return record_hop(
            self.platform, self.actor, run.deployment, run.id,
            "promote" if promoted else "rollback", end, at=canary.finished_at or now,
            status=PROMOTED if promoted else ROLLED_BACK,
            reason=(f"{canary.candidate} promoted" if promoted
                    else f"{canary.candidate} rolled back: {canary.reason}"),
        )  # fmt: skip

    def _next_check(self, run: RetrainRun) -> datetime | None:
        with self.platform.read_session() as session:
            return session.execute(
                select(RetrainRunRow.next_check_at).where(RetrainRunRow.id == run.id)
            ).scalar_one_or_none()
