"""The closed loop in one process with a real home: a scheduled monitor catches a shifted
feature in the prediction log (alert, incident, ``drift.detected``), the deployment's
retraining policy fires its trigger, the policy's pipeline runs in worker processes
(fit, gate, register), the candidate waits for the approval the release policy wants, is
deployed beside the champion and canaried on logged traffic until it is promoted; every
hop is on the incident with its time and in the audit trail. A second alert while the run
is under way, and a third within the cooldown after it ended, retrain nothing. A gate's
refusal ends a run before registering; an archived candidate ends one awaiting approval."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.home import init_home
from ghaf.incidents.records import get_incident, list_incidents
from ghaf.monitoring.monitors import run_due_monitors
from ghaf.monitoring.schedule import default_log_dir, schedule_monitor
from ghaf.pipelines import list_runs, output_of
from ghaf.pipelines.records import get_run
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, get_model_version, transition_model_version
from ghaf.retraining import (
    RetrainLoop,
    get_retrain_policy,
    list_retrain_runs,
    set_retrain_policy,
)
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.serving.deployments import get_deployment
from ghaf.serving.predlog import ParquetSink, PredictionLogger
from ghaf.settings import load_settings
from ghaf.testing.retraining import TARGET
from tests.unit.monitoring.monitor_home import FEATURES, Seeded, features, seed_home
from tests.unit.serving.server_processes import second_person

PLAN = {
    "steps": [50, 100],
    "min_samples": 20,
    "min_time_s": 0,
    "interval_s": 0.2,
    "max_error_rate": None,
    "max_p99_ms": 100,
    "quality": None,
}


@pytest.fixture
def home(isolated_env: Path) -> Platform:
    settings = load_settings(home=isolated_env, pipelines=[TARGET])
    with init_home(settings) as platform:
        yield platform


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _near(moment: datetime, seconds: float) -> bool:
    """``moment`` is ``seconds`` on the loop's clock (which moves on as its work takes time)."""
    return abs(moment.timestamp() - seconds) < 1.0


def _log_drift(platform: Platform, seeded: Seeded, start: float, tag: str, n: int = 400) -> None:
    """``n`` requests of fraud:1 on shifted traffic, logged from ``start`` (epoch s)."""
    x = features(hash(tag) % 1000, n, shift={"amount": 2.0})
    scores = seeded.model.predict_proba(x)
    logger = PredictionLogger([ParquetSink(default_log_dir(platform))], flush_every=60)
    for i in range(n):
        logger.log(
            {"request_id": f"{tag}-{i}", "ts": (start + i * 0.1) * 1000.0, "model": "fraud",
             "version": "1", "variant": "primary", "latency_ms": 1.0, "features": x[i : i + 1],
             "outputs": {"probabilities": scores[i : i + 1]}, "columns": FEATURES}
        )  # fmt: skip
    logger.close()


def _log_answers(platform: Platform, start: float, counts: dict[str, int]) -> None:
    """Answers of each version (``counts``) as the server logs them, from ``start``: the
    champion's (four features, two probabilities) and the candidate's (three, ``y``)."""
    logger = PredictionLogger([ParquetSink(default_log_dir(platform))], flush_every=60)
    for version, n in counts.items():
        champion = version == "1"
        x = np.ones((1, 4 if champion else 3), dtype=np.float32)
        outputs = {"probabilities": np.array([[0.8, 0.2]])} if champion else {
            "y": np.array([[0.2, 0.3, 0.5]])}  # fmt: skip
        for i in range(n):
            logger.log(
                {"request_id": f"c{version}-{start}-{i}", "ts": (start + i * 0.1) * 1000.0,
                 "model": "fraud", "version": version, "variant": version, "latency_ms": 2.0,
                 "features": x, "outputs": outputs, **({"columns": FEATURES} if champion else {})}
            )  # fmt: skip
    logger.close()


def test_an_alert_retrains_gates_waits_for_approval_canaries_and_promotes(
    home: Platform, tmp_path: Path
) -> None:
    platform, admin = home, home.admin()
    seeded = seed_home(platform, tmp_path)
    policy = set_retrain_policy(
        platform, admin, "fraud", pipeline=TARGET, plan=PLAN, params={"weight": 3.0},
        cooldown_s=3600,
    )  # fmt: skip
    assert policy.trigger_key == "retrain:default:fraud" and policy.alerts == (
        "drift.detected",
        "model.quality",
    )
    base = time.time() - 3600  # the loop runs on the log's clock, an hour back
    schedule_monitor(platform, admin, "fraud", every="5m", start_at=_at(base + 300))
    _log_drift(platform, seeded, base + 10, "w1")
    with RetrainLoop(platform, admin) as loop:
        # The monitor catches the shift: alert, incident, drift.detected; the loop fires.
        [breached] = run_due_monitors(platform, admin, now=_at(base + 310))
        assert breached.events == ("drift.detected",)
        [run] = loop.tick(now=_at(base + 310))
        [incident] = list_incidents(platform)
        assert run.incident == incident.number and incident.model_version == "fraud:1"
        assert run.status == "awaiting_approval", run.reason
        assert run.candidate == "fraud:2" and run.champion == "fraud:1"
        assert "approvals by someone other than its author" in run.reason
        assert run.until is not None and _near(run.until, base + 310)
        [pipeline_run] = list_runs(platform, "toy-retraining")
        assert pipeline_run.trigger == "retrain:default:fraud"
        passed = output_of(platform, get_run(platform, pipeline_run.id), "register")
        assert passed["until"] == run.until.isoformat() and passed["champion"] == "fraud:1"
        assert get_deployment(platform, "fraud").models == {"fraud:1": 1.0}  # not yet

        # Another window drifts while the run waits: counted on the incident, not retrained.
        _log_drift(platform, seeded, base + 320, "w2")
        run_due_monitors(platform, admin, now=_at(base + 610))
        [skipped] = loop.tick(now=_at(base + 610))
        assert skipped.status == "skipped" and "under way (awaiting_approval)" in skipped.reason

        # A second person approves: deployed beside the champion at no traffic, canaried.
        approve_model_version(platform, second_person(platform), "fraud:2")
        [started] = loop.tick(now=_at(base + 620))
        assert started.status == "canary" and started.canary == "fraud-retrain-1"
        assert get_deployment(platform, "fraud").models == {"fraud:1": 50.0, "fraud:2": 50.0}
        assert loop.tick(now=_at(base + 620.1)) == []  # not due yet (interval_s)

        _log_answers(platform, base + 625, {"1": 25, "2": 25})
        [advanced] = loop.tick(now=_at(base + 630))
        assert advanced.status == "canary" and "advance" in advanced.reason
        _log_answers(platform, base + 631, {"2": 25})
        [done] = loop.tick(now=_at(base + 640))
        assert done.status == "promoted", done.reason
        assert get_model_version(platform, "fraud@champion").ref == "fraud:2"
        assert get_deployment(platform, "fraud").models == {"fraud:1": 0.0, "fraud:2": 100.0}

        # Drift again within the cooldown, the run over: still one pipeline run.
        _log_drift(platform, seeded, base + 620, "w3")
        run_due_monitors(platform, admin, now=_at(base + 910))
        [cooled] = loop.tick(now=_at(base + 910))
        assert cooled.status == "skipped" and cooled.reason.startswith("cooldown: last run")
    assert len(list_runs(platform, "toy-retraining")) == 1
    runs = list_retrain_runs(platform, "fraud")
    assert [r.status for r in runs] == ["skipped", "skipped", "promoted"]

    # The incident holds every hop, in order, each with its time on the loop's clock.
    _, timeline = get_incident(platform, incident.number)
    hops = [(e.kind, e.details.get("action") or e.details.get("fired")) for e in timeline]
    kinds = [k for k, _ in hops]
    assert kinds[:2] == ["opened", "alert"]
    loop_hops = [h for h in hops if h[0] not in ("opened", "alert")]
    assert loop_hops == [
        ("trigger", True), ("retrain", None), ("register", None), ("gate", None),
        ("approval", None), ("trigger", False), ("approval", None), ("deploy", None),
        ("canary", "start"), ("canary", "advance"), ("canary", "promote"), ("promote", None),
        ("trigger", False),
    ]  # fmt: skip
    times = [e.at for e in timeline if e.kind not in ("opened", "alert")]
    assert times == sorted(times) and _near(times[0], base + 310)
    gate = next(e for e in timeline if e.kind == "gate").details
    assert gate["passed"] and gate["pipeline"]["policy"] == "toy"

    # ... and each is a governed, audited operation.
    with platform.read_session() as session:
        records = session.execute(
            select(AuditRecordRow)
            .where(AuditRecordRow.action.startswith("deployment.retrain_"))
            .order_by(AuditRecordRow.seq)
        ).scalars()
        details = [json.loads(r.details) for r in records if r.outcome == "allowed"]
    assert details[0]["pipeline"] == TARGET  # deployment.retrain_set: the policy
    audited = [d["hop"] for d in details[1:]]
    assert audited == [k for k, _ in loop_hops]


def test_a_gate_refusal_ends_the_run_and_policies_are_checked(
    home: Platform, tmp_path: Path
) -> None:
    platform, admin = home, home.admin()
    seeded = seed_home(platform, tmp_path)
    with pytest.raises(InvalidInputError, match="is not one this home runs"):
        set_retrain_policy(
            platform, admin, "fraud", pipeline="ghaf.pipelines.examples:numbers", plan=PLAN
        )
    with pytest.raises(InvalidInputError, match="has no parameter 'nope'"):
        set_retrain_policy(platform, admin, "fraud", pipeline=TARGET, plan=PLAN, params={"nope": 1})
    with pytest.raises(InvalidInputError, match="field steps"):
        set_retrain_policy(platform, admin, "fraud", pipeline=TARGET, plan={"steps": [50, 10]})
    with pytest.raises(NotFoundError, match="deployment 'nope' does not exist"):
        set_retrain_policy(platform, admin, "nope", pipeline=TARGET, plan=PLAN)
    with pytest.raises(NotFoundError, match="no retraining policy"):
        get_retrain_policy(platform, "fraud")
    set_retrain_policy(
        platform, admin, "fraud", pipeline=TARGET, plan=PLAN,
        params={"weight": 0.5, "min_weight": 1.0}, cooldown_s=0,
    )  # fmt: skip
    base = time.time() - 3600
    schedule_monitor(platform, admin, "fraud", every="5m", start_at=_at(base + 300))
    _log_drift(platform, seeded, base + 10, "g1")
    with RetrainLoop(platform, admin) as loop:
        run_due_monitors(platform, admin, now=_at(base + 310))
        [run] = loop.tick(now=_at(base + 310))
    assert run.status == "failed" and "gate refused" in run.reason and run.candidate is None
    _, timeline = get_incident(platform, run.incident or "")
    gate = [e for e in timeline if e.kind == "gate"]
    assert gate and gate[0].details["passed"] is False
    assert "weight 0.5 < 1" in gate[0].details["reason"]
    assert get_deployment(platform, "fraud").models == {"fraud:1": 1.0}
    assert timedelta(0) <= gate[0].at - _at(base + 310) < timedelta(minutes=5)

    # With a passing weight the next alert retrains (no cooldown); archiving the waiting
    # candidate is how a person turns it down: the run ends, nothing is deployed.
    set_retrain_policy(
        platform, admin, "fraud", pipeline=TARGET, plan=PLAN, params={"weight": 2.0},
        cooldown_s=0,
    )  # fmt: skip
    _log_drift(platform, seeded, base + 320, "g2")
    with RetrainLoop(platform, admin) as loop:
        run_due_monitors(platform, admin, now=_at(base + 610))
        [waiting] = loop.tick(now=_at(base + 610))
        assert waiting.status == "awaiting_approval" and waiting.candidate == "fraud:2"
        transition_model_version(platform, admin, "fraud:2", "archived")
        [ended] = loop.tick(now=_at(base + 620))
    assert ended.status == "failed" and "archived" in ended.reason
    assert get_deployment(platform, "fraud").models == {"fraud:1": 1.0}


def test_a_loop_that_was_not_running_acts_on_the_stored_breach_once(
    home: Platform, tmp_path: Path
) -> None:
    """The monitor breached while no loop listened (its event reached nobody); the next
    loop reads the breach from the monitors' stored results, retrains once, and a loop
    started after that (a restart) does not retrain it again."""
    platform, admin = home, home.admin()
    seeded = seed_home(platform, tmp_path)
    set_retrain_policy(platform, admin, "fraud", pipeline=TARGET, plan=PLAN, cooldown_s=60)
    base = time.time() - 3600
    schedule_monitor(platform, admin, "fraud", every="5m", start_at=_at(base + 300))
    _log_drift(platform, seeded, base + 10, "missed")
    [breached] = run_due_monitors(platform, admin, now=_at(base + 310))
    assert breached.events == ("drift.detected",)  # published to nobody
    with RetrainLoop(platform, admin) as loop:
        [run] = loop.tick(now=_at(base + 320))
        assert run.event == f"drift:default:{breached.results[0].id}"
        assert run.status == "awaiting_approval", run.reason
    with RetrainLoop(platform, admin) as again:
        assert [r.id for r in again.tick(now=_at(base + 330))] in ([], [run.id])
    assert len(list_runs(platform, "toy-retraining")) == 1
    assert [r.event for r in list_retrain_runs(platform, "fraud")] == [run.event]
