"""Scheduled monitors in one process, over a prediction log written by the real logger:
a clean window passes, a shifted feature is caught (that one only) with an alert, an
incident and a ``drift.detected`` event, labels that arrive later fill in the window's
performance, and the drift alert resolves once the traffic is clean again."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ghaf.data import write_dataset
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.events.base import Event
from ghaf.experiments.outcomes import import_outcomes
from ghaf.incidents.ingest import list_alerts
from ghaf.incidents.records import list_incidents
from ghaf.monitoring.monitors import list_results, monitor_status, run_due_monitors, run_monitor
from ghaf.monitoring.schedule import default_log_dir, get_schedule, schedule_monitor
from ghaf.platform import Platform
from ghaf.serving.predlog import ParquetSink, PredictionLogger
from tests.unit.monitoring.monitor_home import FEATURES, Seeded, features, labels_for, seed_home

N = 1000


def _log(
    platform: Platform,
    seeded: Seeded,
    x: np.ndarray,
    start: float,
    tag: str,
    *,
    version: str = "1",
    shadow: bool = False,
) -> list[str]:
    """Score ``x`` with the model and log one request per row from ``start`` (epoch s)."""
    logger = PredictionLogger([ParquetSink(default_log_dir(platform))], flush_every=60)
    probabilities = seeded.model.predict_proba(x)
    ids = [f"{tag}-{i}" for i in range(len(x))]
    for i, request_id in enumerate(ids):
        logger.log(
            {
                "request_id": request_id,
                "ts": (start + i * 0.05) * 1000.0,
                "model": "fraud",
                "version": version,
                "variant": "shadow" if shadow else "primary",
                "shadow": shadow,
                "latency_ms": 1.0,
                "features": x[i : i + 1],
                "outputs": {"probabilities": probabilities[i : i + 1]},
                "columns": FEATURES,
            }
        )
    logger.close()
    return ids


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_a_monitor_catches_the_shifted_feature_then_fills_in_performance(
    platform: Platform, tmp_path: Path
) -> None:
    seeded = seed_home(platform, tmp_path)
    admin = platform.admin()
    t = time.time()
    baseline = features(10, N)
    baseline_ids = _log(platform, seeded, baseline, t - 1499, "base")  # t-1499 .. t-1449
    shifted = features(11, N, shift={"amount": 2.0})
    shifted_ids = _log(platform, seeded, shifted, t - 1150, "shift")  # t-1150 .. t-1100
    schedule = schedule_monitor(
        platform, admin, "fraud", every="5m", window="10m", start_at=_at(t - 1200)
    )
    assert (schedule.interval_s, schedule.window_s, schedule.reference) == (300, 600, None)
    events: list[Event] = []
    platform.events.subscribe("drift.detected", events.append)

    # Due at t-1200: the window [t-1800, t-1200) holds the baseline alone.
    [clean] = run_due_monitors(platform, admin, now=_at(t - 1190))
    [result] = clean.results
    assert result.model_version == "fraud:1" and result.status == "ok", result
    assert (result.window_start, result.window_end) == (_at(t - 1800), _at(t - 1200))
    assert result.predictions == N and result.report["reference"] == "profile:fraud-v1-training@1"
    assert result.report["reference_scores"] == "profile:fraud-v1-scores@1"
    assert result.report["estimate"]["accuracy"] > 0.6 and not events
    assert get_schedule(platform, "fraud").next_run_at == _at(t - 900)
    assert run_due_monitors(platform, admin, now=_at(t - 899)) == []  # its log is settling

    # Run late, it covers the next window in turn, [t-1500, t-900): the shift is in it.
    [drifted] = run_due_monitors(platform, admin, now=_at(t - 700))
    [result] = drifted.results
    assert result.window_end == _at(t - 900) and result.predictions == 2 * N
    assert result.status == "breached" and result.drifted_features == ("amount",)
    assert {"drift", "prediction_drift"} <= set(result.breaches)
    columns = {c["column"]: c for c in result.report["drift"]["columns"]}
    assert [name for name, c in columns.items() if c["alarm"]] == ["amount"]
    assert result.performance is None and result.labels == 0
    assert drifted.events == ("drift.detected",)
    [event] = events
    assert event.data["deployment"] == "fraud" and event.data["model"] == "fraud"
    assert event.data["model_version"] == "fraud:1" and event.data["features"] == ["amount"]
    alerts = {a["name"]: a for a in list_alerts(platform)}
    assert alerts["drift.detected"]["model_version"] == "fraud:1"
    assert alerts["drift.detected"]["status"] == "firing"
    [incident] = [i for i in list_incidents(platform) if i.title.startswith("drift on fraud")]
    assert (incident.deployment, incident.model_version) == ("fraud", "fraud:1")

    # The labels of that window are imported later: the next run fills in its performance.
    labels = np.concatenate([labels_for(12, baseline), labels_for(13, shifted)])
    table = pa.table({"request_id": baseline_ids + shifted_ids, "outcome": labels})
    stored = write_dataset(platform, admin, "fraud-labels", table, source="chargebacks")
    assert import_outcomes(platform, admin, "fraud", stored.ref) == 2 * N
    later = run_monitor(platform, admin, "fraud", now=_at(t - 300))
    assert [r.status for r in later.results] == ["no predictions"]
    filled = {r.id: r for r in later.updated}
    assert filled[result.id].labels == 2 * N and filled[result.id].performance is not None
    performance, estimate = filled[result.id].performance, result.report["estimate"]
    assert performance["accuracy"] == pytest.approx(estimate["accuracy"], abs=0.04)
    assert performance["roc_auc"] == pytest.approx(estimate["roc_auc"], abs=0.04)
    [stored] = [r for r in list_results(platform, "fraud") if r.id == result.id]
    assert stored.performance == performance and stored.window_end == _at(t - 900)

    # Clean traffic again: the drift alert resolves (its incident stays for a person).
    _log(platform, seeded, features(14, N), t - 250, "again")
    recovered = run_monitor(platform, admin, "fraud", now=_at(t - 100))
    assert "drift" not in recovered.results[0].breaches
    alerts = {a["name"]: a for a in list_alerts(platform)}
    assert alerts["drift.detected"]["status"] == "resolved"
    [latest] = monitor_status(platform)
    assert latest.id == recovered.results[0].id


def test_a_schedule_names_what_is_wrong(platform: Platform, tmp_path: Path) -> None:
    admin = platform.admin()
    with pytest.raises(NotFoundError, match="deployment 'nope' does not exist"):
        schedule_monitor(platform, admin, "nope")
    seed_home(platform, tmp_path, rows=300)
    with pytest.raises(InvalidInputError, match="interval"):
        schedule_monitor(platform, admin, "fraud", every="1s")
    with pytest.raises(InvalidInputError, match="not a duration"):
        schedule_monitor(platform, admin, "fraud", window="soon")
    with pytest.raises(InvalidInputError, match="unknown monitor option 'alfa'"):
        schedule_monitor(platform, admin, "fraud", options={"alfa": 0.1})
    with pytest.raises(InvalidInputError, match="alpha"):
        schedule_monitor(platform, admin, "fraud", options={"alpha": 2})
    with pytest.raises(NotFoundError, match="no stored profile"):
        schedule_monitor(platform, admin, "fraud", reference="profile:missing")
    with pytest.raises(NotFoundError, match="no monitor is scheduled"):
        run_monitor(platform, admin, "fraud")
    made = schedule_monitor(platform, admin, "fraud", every=60)
    assert made.window_s == 60
    long_after = made.next_run_at + timedelta(hours=2)  # 120 windows behind: skip to the last
    [run] = run_due_monitors(platform, admin, now=long_after)
    assert run.window_end == made.next_run_at + timedelta(seconds=119 * 60)
    assert "skipped 119 windows" in run.results[0].note
    assert [r.status for r in run.results] == ["no predictions"]


def test_a_shadow_version_is_judged_on_its_own_rows(platform: Platform, tmp_path: Path) -> None:
    """The deployment's shadow answers the same requests: its rows (logged as shadow) are
    its own version's window, with its own training profile."""
    from ghaf.registry import approve_model_version, register_model
    from ghaf.serving.deployments import update_deployment
    from tests.unit.serving.server_processes import second_person

    seeded = seed_home(platform, tmp_path, rows=500)
    admin = platform.admin()
    first = seeded.version
    second = register_model(
        platform,
        admin,
        "fraud",
        tmp_path / "saved",
        signature=first.signature,
        lineage=first.lineage,
    )
    approve_model_version(platform, second_person(platform), second.ref)
    update_deployment(platform, admin, "fraud", shadow=second.ref)
    t = time.time()
    x = features(30, 300)
    _log(platform, seeded, x, t - 100, "live")
    _log(platform, seeded, x, t - 100, "live", version="2", shadow=True)
    schedule_monitor(platform, admin, "fraud", every="5m")
    run = run_monitor(platform, admin, "fraud", now=_at(t))
    assert [(r.model_version, r.status, r.predictions) for r in run.results] == [
        ("fraud:1", "ok", 300),
        ("fraud:2", "ok", 300),
    ]
    assert run.results[1].report["reference"] == "profile:fraud-v2-training@1"


def test_performance_thresholds_hold_the_realized_metric_once_enough_labels_are_in() -> None:
    from ghaf.monitoring.evaluate import performance_breaches
    from ghaf.monitoring.records import MonitorOptions

    options = MonitorOptions(min_auc=0.8, min_accuracy=0.7)
    realized = {"accuracy": 0.75, "roc_auc": 0.79}
    estimate = {"accuracy": 0.65, "roc_auc": 0.9}
    assert performance_breaches(realized, estimate, 0.9, options) == [
        "realized roc_auc 0.790 < 0.8"
    ]
    assert performance_breaches(realized, estimate, 0.1, options) == [
        "estimated accuracy 0.650 < 0.7"
    ]
    assert performance_breaches(None, None, 0.0, options) == []
    assert performance_breaches(realized, estimate, 0.9, MonitorOptions()) == []
