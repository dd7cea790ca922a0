"""Demo stage: the loop closes on the drift period's traffic.

The served deployment gets a retraining policy (the demo's retraining pipeline, a
canary plan) and a monitor every ``MONITOR_EVERY_S`` seconds. The monitor runs over the
replayed window of the prediction log on the log's own clock (``now=``: the wall time at
which the requests were served), so it sees the drift as it arrived: the first window
that breaches fires the drift alert, which opens an incident and publishes
``drift.detected``; the retraining loop (:mod:`ghaf.retraining`) retrains on the feature
store up to then (``until``: the replayed time of that moment), gates the candidate
against the champion and registers it; the risk officer approves it (the release policy
wants a second person); the loop deploys it beside the champion and starts its canary;
a second ``ghaf serve`` loads both versions, and the drift period's next hours are
replayed through it, their labels reported as they come (``POST /v2/feedback``), the
canary evaluated after each slice until it is promoted or rolled back. Each hop is on the
incident with its time, and in the audit trail.

Two clocks are reported. Replayed time is the scenario's: of the data each hop judged
(the breached window's last prediction; the canary slice after which it was decided),
from the drift onset. Wall time is the prediction log's clock (when requests were
served), from the first drifted request: the monitor runs over it with ``now=``, and the
loop's work (retraining takes seconds) moves it on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.demo.runner import DemoEnv
from ghaf.demo.stage_features import BEHAVIOUR, TRANSACTION_COLUMNS, request_fields
from ghaf.demo.state import Champion, Datasets, FeatureSet, Replay, Served
from ghaf.errors import AlreadyExistsError, BackendUnavailableError
from ghaf.platform import Platform

MONITOR_EVERY_S = 5
"""The monitor's interval and window on the log's clock (the replay sends 24 h in ~10 s)."""
FIRST_WINDOW_ROWS = 200
"""Where the monitor's schedule starts: its first window closes once this many drifted
predictions were served. A schedule's phase is arbitrary; this one keeps the compressed
replay's first hours in one window, rather than all 24 h in the first 5 s."""
CANARY_HOURS = 2
"""Replayed hours of traffic between two evaluations of the canary."""
CANARY_SLICES = 10
REFRESH_SLICES = 4
"""The online store catches up every this many slices (8 replayed hours)."""
CONCURRENCY = 8
LOG_WAIT_S = 30.0
PLAN: dict[str, Any] = {
    "steps": [50, 100],
    "min_samples": 100,
    "min_time_s": 0,
    "interval_s": 0.2,
    "max_error_rate": None,
    "max_p99_ms": 250,
    "quality": {
        "kind": "accuracy",
        "min_labels": 150,
        "max_drop": 0.03,
        "max_psi": None,
        "reference_s": 0,
    },
    "promote_alias": "champion",
}
"""The candidate's canary: half the traffic, then all of it; evidence-based steps (the
replay compresses hours into seconds, so no minimum time); labelled accuracy within 3
points of the champion's on the same traffic (the canary's), and since the labels come
with each slice it waits for them rather than judging by score drift (a model retrained
on drifted data scores differently by design)."""
HOPS = ("trigger", "retrain", "register", "gate", "approval", "deploy", "canary")


@dataclass(frozen=True)
class Moment:
    """One instant on both clocks: replayed (the scenario's) and wall (the log's)."""

    replay: datetime
    wall: datetime


@dataclass(frozen=True)
class ClosedLoop:
    """The drift's onset, its detection, the incident and the canary's decision, each on
    both clocks; what was retrained and decided; the hops on the incident."""

    onset: Moment
    detected: Moment
    incident: str
    opened: Moment
    decision: str
    decided: Moment | None
    candidate: str
    champion: str
    until: datetime | None
    """The retraining's training set ends here (replayed time when the loop fired)."""
    gate: dict[str, Any]
    hops: tuple[str, ...]
    audited: int
    canary_requests: int
    retrain_runs: tuple[str, ...]

    @property
    def summary(self) -> str:
        def after(moment: Moment | None) -> str:
            if moment is None:
                return "never"
            hours = (moment.replay - self.onset.replay).total_seconds() / 3600
            wall = (moment.wall - self.onset.wall).total_seconds()
            return f"{moment.replay:%Y-%m-%d %H:%M} replayed (+{hours:.1f} h; +{wall:.1f} s wall)"

        gate = self.gate
        return (
            f"drift onset {self.onset.replay:%Y-%m-%d %H:%M} replayed -> detected "
            f"{after(self.detected)} -> incident {self.incident} {after(self.opened)} -> "
            f"{self.decision} {after(self.decided)}; {self.candidate} retrained on the "
            f"feature store up to {f'{self.until:%Y-%m-%d %H:%M}' if self.until else '?'} "
            "replayed, "
            f"AUC {gate.get('auc', float('nan')):.3f} vs "
            f"champion {self.champion} {gate.get('champion_auc') or float('nan'):.3f} on the "
            f"same rows, approved, canaried on {self.canary_requests:,} drift-period "
            f"requests; {len(self.hops)} hops on {self.incident} "
            f"({', '.join(dict.fromkeys(self.hops))}), {self.audited} audited; retraining "
            f"runs: {', '.join(self.retrain_runs)} (wall: the prediction log's clock)"
        )


def close_the_loop(
    env: DemoEnv,
    datasets: Datasets,
    features: FeatureSet,
    champion: Champion,
    served: Served,
    replay: Replay,
) -> ClosedLoop:
    """See the module. Raises BackendUnavailableError when a request or the log fails."""
    from ghaf.demo.retraining_pipeline import TARGET
    from ghaf.monitoring.schedule import schedule_monitor
    from ghaf.pipelines.local import LocalExecutor
    from ghaf.retraining import RetrainLoop, set_retrain_policy

    platform, admin = env.platform, env.platform.admin()
    set_retrain_policy(
        platform, admin, served.deployment, pipeline=TARGET, plan=PLAN,
        params={"days": 45.0}, cooldown_s=6 * 3600.0,
    )  # fmt: skip
    clock = ReplayClock.of_replay(platform, served, replay, datasets)
    onset = Moment(replay.start, clock.first_wall)
    schedule_monitor(
        platform, admin, served.deployment, every=f"{MONITOR_EVERY_S}s",
        start_at=clock.after(FIRST_WINDOW_ROWS),
    )  # fmt: skip
    executor = LocalExecutor()
    env.resources.callback(executor.close)
    with RetrainLoop(platform, admin, executor=executor, data_time=clock.replayed) as loop:
        detected = _monitor_the_replay(platform, loop, clock)
        run = _one_run(platform, served.deployment)
        if run.status == "awaiting_approval" and run.candidate:
            _approve(platform, run.candidate)
            loop.tick(now=_now())
        run = _one_run(platform, served.deployment)
        decided, sent = (None, 0)
        if run.status == "canary" and run.candidate and run.champion:
            decided, sent = _canary(env, loop, features, datasets, served, replay, run)
        run = _one_run(platform, served.deployment)
    return _report(platform, served, onset, detected, decided, sent, clock)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReplayClock:
    """Replayed time at a moment of the log's clock: the time of the latest transaction
    answered by then (the replay sends them in time order)."""

    walls: np.ndarray
    """Epoch seconds each answer was logged, in order."""
    replayed: Any
    first_wall: datetime
    last_wall: datetime

    @classmethod
    def of_replay(
        cls, platform: Platform, served: Served, replay: Replay, datasets: Datasets
    ) -> ReplayClock:
        from ghaf.data import read_dataset
        from ghaf.serving.predlog import prediction_log_keys, read_prediction_windows

        windows = read_prediction_windows(
            served.log_dir,
            served.model,
            start_ms=replay.logged_from_ms,
            features=False,
            keys=prediction_log_keys(platform),
        )
        logged = windows[served.version]
        walls = np.sort(np.asarray(logged.ts, dtype=np.float64)) / 1000.0
        drift = read_dataset(platform, datasets.drift.ref, columns=["event_ts"])
        stamps = _between(drift, replay.start, replay.end)["event_ts"]
        micros = pc.cast(pc.cast(stamps, pa.timestamp("us", tz="UTC")), pa.int64())
        times = np.sort(micros.to_numpy())

        def replayed(moment: datetime) -> datetime:
            count = int(np.searchsorted(walls, moment.timestamp(), side="right"))
            if count == 0:
                return replay.start
            micros = int(times[min(count, len(times)) - 1])
            return datetime.fromtimestamp(micros / 1e6, UTC)

        first = datetime.fromtimestamp(float(walls[0]), UTC)
        last = datetime.fromtimestamp(float(walls[-1]), UTC)
        return cls(walls, replayed, first, last)

    def after(self, rows: int) -> datetime:
        """Just after the ``rows``-th answer was logged (the last one, with fewer)."""
        index = min(rows, len(self.walls)) - 1
        return datetime.fromtimestamp(float(self.walls[index]) + 0.001, UTC)


def _between(table: pa.Table, start: datetime, end: datetime) -> pa.Table:
    ts = table["event_ts"]
    return table.filter(
        pc.and_(
            pc.greater_equal(ts, pa.scalar(start, ts.type)), pc.less(ts, pa.scalar(end, ts.type))
        )
    )


def _monitor_the_replay(platform: Platform, loop: Any, clock: ReplayClock) -> Moment | None:
    """Run the due monitor on the log's clock over the replayed window, the loop after
    each pass (its work moves the clock on: a window that fell due meanwhile runs late, as
    in ``ghaf monitor run --loop``); the moment the first breach was found."""
    from ghaf.monitoring.monitors import run_due_monitors
    from ghaf.monitoring.schedule import SETTLE_S

    admin = platform.admin()
    now = clock.after(FIRST_WINDOW_ROWS) + timedelta(seconds=SETTLE_S)
    end = clock.last_wall + timedelta(seconds=MONITOR_EVERY_S + SETTLE_S)
    detected = None
    while True:
        runs = run_due_monitors(platform, admin, now=now)
        breached = [r for r in runs if r.breached]
        if detected is None and breached:
            # Replayed time: of the data the window judged (the replay's compression makes
            # the seconds the log settles before a run hours of replayed time).
            detected = Moment(clock.replayed(breached[0].window_end), now)
        began = time.monotonic()
        loop.tick(now=now)
        if now >= end and not runs:
            return detected
        now += timedelta(seconds=max(1.0, time.monotonic() - began))


def _one_run(platform: Platform, deployment: str) -> Any:
    from ghaf.retraining import list_retrain_runs

    runs = [r for r in list_retrain_runs(platform, deployment) if r.status != "skipped"]
    if not runs:
        raise BackendUnavailableError(
            "the drift alert started no retraining", hint="ghaf deployments retraining"
        )
    return runs[0]


def _approve(platform: Platform, ref: str) -> None:
    """The risk officer approves the candidate with a token of their own (four eyes)."""
    from ghaf.access.bindings import bind_role
    from ghaf.access.tokens import create_token, verify_token
    from ghaf.demo.stage_training import APPROVER
    from ghaf.registry import approve_model_version

    admin = platform.admin()
    with contextlib.suppress(AlreadyExistsError):
        bind_role(platform, admin, APPROVER, "model_approver", project="*")
    token = create_token(platform, admin, APPROVER, project=platform.default_project)
    officer = verify_token(platform, token.secret, source="demo")
    approve_model_version(platform, officer, ref, comment="retrained on drift: card reviewed")


def _canary(
    env: DemoEnv,
    loop: Any,
    features: FeatureSet,
    datasets: Datasets,
    served: Served,
    replay: Replay,
    run: Any,
) -> tuple[Moment | None, int]:
    """Serve both versions, replay the next hours slice by slice with their labels, and
    let the loop evaluate the canary after each; the decision's moment and requests sent."""
    from ghaf.data import read_dataset
    from ghaf.demo.stage_serving import ModelServerProcess
    from ghaf.features.materialize import materialize

    platform, admin = env.platform, env.platform.admin()
    args = [run.champion, run.candidate, "--deployment", served.deployment, "--log-dir",
            str(served.log_dir), "--entity-key", features.entity_key, "--features",
            features.service]  # fmt: skip
    server = ModelServerProcess(
        env.settings.home, args, env.workdir / "serve-canary.log", env.settings.artifact_region
    )
    env.resources.callback(server.stop)
    server.start()
    columns = [*TRANSACTION_COLUMNS, "is_fraud"]
    drift = read_dataset(platform, datasets.drift.ref, columns=columns)
    sent = 0
    for index in range(CANARY_SLICES):
        start = replay.end + timedelta(hours=index * CANARY_HOURS)
        end = start + timedelta(hours=CANARY_HOURS)
        if index % REFRESH_SLICES == 0:
            materialize(platform, admin, [BEHAVIOUR], until=start)
        window = _between(drift, start, end).sort_by("event_ts")
        ids = [f"tx-{i}" for i in window["tx_id"].to_pylist()]
        since = time.time() * 1000.0
        _send(server.url, served, features, window, ids)
        _await_log(platform, served, since, len(ids))
        _report_labels(server.url, served, ids, window["is_fraud"].to_pylist())
        sent += len(ids)
        for moved in loop.tick(now=_now()):
            if moved.status in ("promoted", "rolled_back"):
                return Moment(end, moved.finished_at or _now()), sent
    return None, sent


def _send(url: str, served: Served, features: FeatureSet, window: pa.Table, ids: list[str]) -> None:
    """One request per transaction, with its id (the log's request id), a few in flight.

    Raises:
        BackendUnavailableError: a request failed.
    """
    import http.client
    from urllib.parse import urlsplit

    import orjson

    fields = request_fields(window)
    table = pa.table(
        {
            features.entity_key: window[features.entity_key],
            **{name: fields[name] for name in features.request_fields},
        }
    )
    records = table.to_pylist()
    where = urlsplit(url)
    headers = {"Authorization": f"Bearer {served.token}", "Content-Type": "application/json"}
    local = threading.local()
    opened: list[http.client.HTTPConnection] = []
    failures: list[str] = []

    def one(item: tuple[str, dict[str, Any]]) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(
                where.hostname or "127.0.0.1", where.port, timeout=30
            )
            opened.append(conn)
        request_id, record = item
        body = orjson.dumps({"id": request_id, "records": [record]})
        try:
            conn.request("POST", f"/predict/{served.model}", body=body, headers=headers)
            reply = conn.getresponse()
            answer = reply.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            failures.append(f"{type(exc).__name__}: {exc}")
            return
        if reply.status != 200:
            failures.append(f"{reply.status}: {answer[:300]!r}")

    try:
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="demo-canary") as pool:
            list(pool.map(one, zip(ids, records, strict=True)))
    finally:
        for conn in opened:
            conn.close()
    if failures:
        raise BackendUnavailableError(
            f"{len(failures)} of {len(ids)} canary requests failed: {failures[0]}"
        )


def _await_log(platform: Platform, served: Served, since_ms: float, expected: int) -> None:
    from ghaf.serving.predlog import prediction_log_keys, read_prediction_windows

    keys = prediction_log_keys(platform)
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        windows = read_prediction_windows(
            served.log_dir, served.model, start_ms=since_ms, features=False, keys=keys
        )
        rows = sum(int(w.ts.size) for w in windows.values())
        if rows >= expected:
            return
        if time.monotonic() > deadline:
            raise BackendUnavailableError(
                f"the prediction log holds {rows} of {expected} canary answers",
                hint=f"see {served.log_dir}",
            )
        time.sleep(0.1)


def _report_labels(url: str, served: Served, ids: list[str], labels: list[bool]) -> None:
    """The slice's outcomes, reported by request id as the bank learns them."""
    import httpx

    outcomes = [
        {"request_id": i, "outcome": int(bool(y))} for i, y in zip(ids, labels, strict=True)
    ]
    reply = httpx.post(
        f"{url}/v2/feedback",
        json={"model": served.model, "outcomes": outcomes},
        headers={"Authorization": f"Bearer {served.token}"},
        timeout=60.0,
    )
    if reply.status_code != 201:
        raise BackendUnavailableError(f"feedback answered {reply.status_code}: {reply.text[:300]}")


def _report(
    platform: Platform,
    served: Served,
    onset: Moment,
    detected: Moment | None,
    decided: Moment | None,
    sent: int,
    clock: ReplayClock,
) -> ClosedLoop:
    from sqlalchemy import func, select

    from ghaf.incidents.records import get_incident
    from ghaf.retraining import list_retrain_runs
    from ghaf.security.audit_tables import AuditRecordRow

    runs = list_retrain_runs(platform, served.deployment)
    run = next(r for r in runs if r.status != "skipped")
    if detected is None or run.incident is None:
        raise BackendUnavailableError("the monitor found no drift in the replayed window")
    incident, timeline = get_incident(platform, run.incident)
    gate = next((e.details for e in timeline if e.kind == "gate"), {})
    pipeline_gate = dict(gate.get("pipeline") or {})
    with platform.read_session() as session:
        audited = session.execute(
            select(func.count())
            .select_from(AuditRecordRow)
            .where(AuditRecordRow.action.like("deployment.retrain\\_%", escape="\\"))
            .where(AuditRecordRow.outcome == "allowed")
        ).scalar_one()
    return ClosedLoop(
        onset=onset,
        detected=detected,
        incident=incident.number,
        opened=Moment(detected.replay, incident.opened_at),
        decision=run.status.replace("_", " "),
        decided=decided,
        candidate=run.candidate or "none",
        champion=run.champion or "?",
        until=run.until,
        gate=pipeline_gate,
        hops=tuple(e.kind for e in timeline if e.kind not in ("opened", "alert")),
        audited=int(audited),
        canary_requests=sent,
        retrain_runs=tuple(f"{r.id} {r.status}" for r in reversed(runs)),
    )
