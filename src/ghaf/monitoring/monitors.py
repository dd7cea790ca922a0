"""Scheduled monitors: each run reads a deployment's window of the prediction log, judges
each model version in it (:mod:`ghaf.monitoring.evaluate`), stores the results, fires
alerts on breaches (``drift.detected``, ``data.quality``, ``model.quality``: each opens or
updates an incident on the deployment and version) and publishes ``drift.detected`` and
``model.quality`` on the event bus for pipeline triggers and the retraining loop; it also
fills in the performance of earlier windows whose labels came in since (joined by request
id).

    schedule_monitor(platform, actor, "fraud", every="5m", window="1h")
    runs = run_due_monitors(platform, actor)      # what is due now; or run_loop(...)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ghaf.alerts.base import Alert, fingerprint
from ghaf.errors import GhafError, NotFoundError, PermissionDeniedError
from ghaf.events.base import Event
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.monitoring.evaluate import (
    Evaluation,
    clean,
    evaluate_window,
    performance_breaches,
    performance_of,
)
from ghaf.monitoring.records import (
    MonitorResult,
    MonitorRun,
    MonitorSchedule,
    result_record,
    schedule_record,
)
from ghaf.monitoring.references import reference_for
from ghaf.monitoring.results import list_results, monitor_status, version_key
from ghaf.monitoring.schedule import deployment_models, due_schedules, due_window_end
from ghaf.monitoring.scoring import score_vector
from ghaf.monitoring.tables import MonitorResultRow, MonitorScheduleRow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.serving.labels import labels_of, outcome_watermark
from ghaf.serving.predlog import PredictionWindow, prediction_log_keys, read_prediction_windows
from ghaf.spine import current_operation, current_session, governed

SUBJECT = "drift.detected"
"""Event-bus subject a run publishes when features or predictions drifted."""
QUALITY_SUBJECT = "model.quality"
"""Event-bus subject a run publishes when a version's performance breached its threshold."""
ALERTS = {"drift": "drift.detected", "quality": "data.quality", "performance": "model.quality"}
"""Alert name per kind of breach (prediction drift counts as drift)."""
BACKFILL_LIMIT = 24
"""Earlier windows whose performance one run may fill in (newest first)."""
EVALUATED = ("ok", "breached")
_log = get_logger(__name__)

__all__ = ["list_results", "monitor_status", "run_due_monitors", "run_loop", "run_monitor"]


def _ms(moment: datetime) -> float:
    return moment.timestamp() * 1000.0


def _versions(platform: Platform, deployment: str) -> dict[str, set[str]]:
    """Model name -> versions the deployment record serves (live and shadow)."""
    from ghaf.serving.deployments import get_deployment

    try:
        record = get_deployment(platform, deployment)
    except NotFoundError:
        return {}
    refs = [*record.models, *([record.shadow] if record.shadow else [])]
    found: dict[str, set[str]] = {}
    for ref in refs:
        name, _, version = ref.rpartition(":")
        found.setdefault(name, set()).add(version)
    return found


def _kind_of(breach: str) -> str:
    return "drift" if breach in ("drift", "prediction_drift") else breach


def _alerts(
    schedule: MonitorSchedule,
    model_version: str,
    evaluation: Evaluation,
    previous: set[str],
    now: datetime,
    end: datetime,
) -> list[Alert]:
    """Firing alerts for this window's breaches; resolved ones for kinds that breached in
    the last evaluated window and are clean now."""
    labels = {"deployment": schedule.deployment, "model_version": model_version}
    kinds = {_kind_of(b) for b in evaluation.breaches}
    was = {_kind_of(b) for b in previous}
    found = []
    for kind, name in ALERTS.items():
        if kind in kinds:
            status, summary = "firing", _summary(kind, schedule, model_version, evaluation)
        elif kind in was and evaluation.status in EVALUATED:
            status, summary = (
                "resolved",
                f"{name} cleared on {schedule.deployment} ({model_version})",
            )
        else:
            continue
        found.append(
            Alert(
                name=name,
                labels=labels,
                severity="high" if kind == "performance" else schedule.options.severity,
                summary=summary,
                source="ghaf.monitoring",
                deployment=schedule.deployment,
                model_version=model_version,
                starts_at=now,
                status=status,
                id=f"monitor:{schedule.project}:{schedule.deployment}:{model_version}:{kind}:"
                f"{end.isoformat()}:{status}",
            )
        )
    return found


def _summary(kind: str, schedule: MonitorSchedule, mv: str, evaluation: Evaluation) -> str:
    where = f"{schedule.deployment} ({mv})"
    if kind == "drift":
        parts = []
        if evaluation.drifted_features:
            parts.append("features " + ", ".join(evaluation.drifted_features[:10]))
        if "prediction_drift" in evaluation.breaches:
            parts.append("predictions")
        return f"drift on {where}: {'; '.join(parts)}"
    if kind == "quality":
        problems = evaluation.report.get("quality", {}).get("problems", [])
        return f"data quality on {where}: {'; '.join(problems[:5])}"
    return f"model quality on {where} below its threshold"


def _previous_breaches(session: Session, schedule_id: int, model_version: str) -> set[str]:
    row = session.execute(
        select(MonitorResultRow.breaches)
        .where(MonitorResultRow.schedule_id == schedule_id)
        .where(MonitorResultRow.model_version == model_version)
        .where(MonitorResultRow.status.in_(EVALUATED))
        .order_by(MonitorResultRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return set(json.loads(row)) if row else set()


def _window_name(deployment: str, start: datetime, end: datetime) -> str:
    return (
        f"{deployment} {start.isoformat(timespec='seconds')}..{end.isoformat(timespec='seconds')}"
    )


@governed("monitoring.run", resource="monitor:{deployment}")
def _record_run(
    platform: Platform,
    actor: Actor,
    deployment: str,
    *,
    end: datetime,
    now: datetime,
    skipped: int = 0,
) -> tuple[MonitorRun, list[Alert]]:
    """Run the monitor of ``deployment`` over the window ending ``end`` (at ``now``);
    store the results and alert."""
    from ghaf.incidents.ingest import ingest_alerts

    session = current_session()
    here = current_operation().project
    started = time.perf_counter()
    row = session.execute(
        select(MonitorScheduleRow)
        .where(MonitorScheduleRow.project == here, MonitorScheduleRow.deployment == deployment)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            f"no monitor is scheduled for deployment {deployment!r}",
            hint="ghaf monitor schedule DEPLOYMENT --every 5m --window 1h",
        )
    schedule = schedule_record(row)
    start = end - timedelta(seconds=schedule.window_s)
    caught_up = f"skipped {skipped} windows to catch up" if skipped else ""
    watermark = outcome_watermark(platform)
    serving = _versions(platform, deployment)
    for name in deployment_models(platform, deployment, here):
        serving.setdefault(name, set())
    results: list[MonitorResultRow] = []
    alerts: list[Alert] = []
    for model in sorted(serving):
        # A shadow version's answers are its own version's rows: judged like the live one's.
        windows = read_prediction_windows(
            Path(schedule.log_dir),
            model,
            start_ms=_ms(start),
            end_ms=_ms(end),
            shadow=True,
            keys=prediction_log_keys(platform),
        )
        for version in sorted(set(windows) | serving[model], key=version_key):
            model_version = f"{model}:{version}"
            clock = time.perf_counter()
            evaluation = _evaluate(
                platform, actor, schedule, model, version, windows.get(version), start, end
            )
            previous = _previous_breaches(session, schedule.id, model_version)
            fired = _alerts(schedule, model_version, evaluation, previous, end, end)
            alerts += fired
            window = windows.get(version)
            results.append(
                MonitorResultRow(
                    schedule_id=schedule.id,
                    project=here,
                    deployment=deployment,
                    model_version=model_version,
                    window_start=start,
                    window_end=end,
                    run_at=now,
                    status=evaluation.status,
                    breaches=json.dumps(evaluation.breaches),
                    predictions=window.rows if window else 0,
                    requests=window.requests if window else 0,
                    drifted_features=json.dumps(evaluation.drifted_features),
                    report=json.dumps(evaluation.report),
                    performance=json.dumps(evaluation.performance)
                    if evaluation.performance
                    else None,
                    labels=evaluation.labels,
                    labels_watermark=watermark,
                    alerts=json.dumps(
                        sorted(
                            {fingerprint(a.name, a.labels) for a in fired if a.status == "firing"}
                        )
                    ),
                    seconds=time.perf_counter() - clock,
                    note="; ".join(n for n in (caught_up, evaluation.note) if n)[:2000],
                )
            )
    updated, more = _backfill(platform, session, schedule, watermark, now)
    alerts += more
    session.add_all(results)
    if alerts:
        ingest_alerts(platform, actor, alerts, now=now)
    row.last_run_at = now
    row.next_run_at = end + timedelta(seconds=schedule.interval_s)
    session.flush()
    records = tuple(result_record(r) for r in results)
    current_operation().details.update(
        {
            "window_end": end.isoformat(),
            "results": {r.model_version: r.status for r in records},
            "alerts": sorted({a.name for a in alerts if a.status == "firing"}),
        }
    )
    run = MonitorRun(
        deployment=deployment,
        project=here,
        window_start=start,
        window_end=end,
        results=records,
        updated=tuple(result_record(r) for r in updated),
        seconds=time.perf_counter() - started,
    )
    return run, alerts


def _evaluate(
    platform: Platform,
    actor: Actor,
    schedule: MonitorSchedule,
    model: str,
    version: str,
    window: PredictionWindow | None,
    start: datetime,
    end: datetime,
) -> Evaluation:
    if window is None or window.rows == 0:
        return Evaluation("no predictions", note="the log holds no prediction of this window")
    columns = window.features.column_names
    reference = reference_for(platform, actor, model, version, schedule.reference, columns)
    labels = labels_of(
        platform, model, window.request_ids.to_pylist(), metric=schedule.options.label_metric
    )
    return evaluate_window(
        window,
        reference,
        labels,
        schedule.options,
        name=_window_name(schedule.deployment, start, end),
    )


def _backfill(
    platform: Platform, session: Session, schedule: MonitorSchedule, watermark: int, now: datetime
) -> tuple[list[MonitorResultRow], list[Alert]]:
    """Fill in the performance of earlier windows whose labels were incomplete, when any
    label arrived since they were last looked at (the outcome watermark moved)."""
    horizon = now - timedelta(seconds=schedule.options.label_horizon_s)
    rows = (
        session.execute(
            select(MonitorResultRow)
            .where(MonitorResultRow.schedule_id == schedule.id)
            .where(MonitorResultRow.status.in_(EVALUATED))
            .where(MonitorResultRow.labels < MonitorResultRow.predictions)
            .where(MonitorResultRow.labels_watermark < watermark)
            .where(MonitorResultRow.window_end >= horizon)
            .order_by(MonitorResultRow.window_end.desc())
            .limit(BACKFILL_LIMIT)
        )
        .scalars()
        .all()
    )
    updated: list[MonitorResultRow] = []
    alerts: list[Alert] = []
    for row in rows:
        model, _, version = row.model_version.rpartition(":")
        window = read_prediction_windows(
            Path(schedule.log_dir),
            model,
            start_ms=_ms(row.window_start),
            end_ms=_ms(row.window_end),
            shadow=True,
            features=False,
            keys=prediction_log_keys(platform),
        ).get(version)
        row.labels_watermark = watermark
        scored = score_vector(window.outputs) if window is not None else None
        if window is None or scored is None:
            continue
        labels = labels_of(
            platform, model, window.request_ids.to_pylist(), metric=schedule.options.label_metric
        )
        count = int((~np.isnan(labels)).sum())
        if count == row.labels:
            continue
        performance = performance_of(scored[0], scored[1], labels, schedule.options)
        row.labels = count
        row.performance = json.dumps(performance) if performance else None
        report = json.loads(row.report)
        problems = performance_breaches(
            performance, report.get("estimate"), count / max(row.predictions, 1), schedule.options
        )
        breaches = [b for b in json.loads(row.breaches) if b != "performance"]
        if problems:
            breaches.append("performance")
            evaluation = Evaluation("breached", breaches=breaches, report=report)
            fired = _alerts(schedule, row.model_version, evaluation, set(), now, row.window_end)
            alerts += [a for a in fired if a.name == ALERTS["performance"]]
        row.breaches = json.dumps(breaches)
        row.status = "breached" if breaches else "ok"
        updated.append(row)
    return updated, alerts


def _events_of(run: MonitorRun) -> list[tuple[str, str, dict[str, object]]]:
    """(subject, message id, payload) of each event the run owes: ``drift.detected`` per
    drifted version, ``model.quality`` per version whose performance breached (in this
    window, or in an earlier one that labels filled in)."""
    found = []
    for result in (*run.results, *run.updated):
        found += _result_events(run.project, run.deployment, result, result in run.results)
    return found


def breach_events(platform: Platform, since: datetime) -> list[Event]:
    """The events every breached result of the platform's project whose window ended at
    or after ``since`` owed, with the ids they were published under (oldest first).

    The results are the durable record: a consumer that was not running when a monitor
    published (or a bus that was down) reads what it missed here, and the ids let it
    tell what it already acted on."""
    query = (
        select(MonitorResultRow)
        .where(MonitorResultRow.project == platform.default_project)
        .where(MonitorResultRow.window_end >= since)
        .where(MonitorResultRow.breaches != "[]")
        .order_by(MonitorResultRow.id)
    )
    with platform.read_session() as session:
        rows = list(session.execute(query).scalars())
    events = []
    for row in rows:
        result = result_record(row)
        for subject, msg_id, payload in _result_events(row.project, row.deployment, result, True):
            events.append(Event(subject, payload, msg_id, row.run_at))
    return events


def _result_events(
    project: str, deployment: str, result: MonitorResult, drift: bool
) -> list[tuple[str, str, dict[str, object]]]:
    kinds = []
    if drift and {"drift", "prediction_drift"} & set(result.breaches):
        kinds.append((SUBJECT, "drift"))
    if "performance" in result.breaches:
        kinds.append((QUALITY_SUBJECT, "quality"))
    model, _, version = result.model_version.rpartition(":")
    found = []
    for subject, tag in kinds:
        payload = clean(
            {
                "project": project,
                "deployment": deployment,
                "model": model,
                "version": version,
                "model_version": result.model_version,
                "features": list(result.drifted_features),
                "predictions": "prediction_drift" in result.breaches,
                "window_start": result.window_start.isoformat(),
                "window_end": result.window_end.isoformat(),
                "result": result.id,
                "alerts": list(result.alerts),
            }
        )
        found.append((subject, f"{tag}:{project}:{result.id}", payload))
    return found


def _after_commit(
    platform: Platform, actor: Actor, run: MonitorRun, alerts: list[Alert]
) -> MonitorRun:
    """Publish ``drift.detected`` and ``model.quality`` for each version that breached (see
    ``_events_of``), and send what the alerts owe."""
    events = []
    for subject, msg_id, payload in _events_of(run):
        try:
            platform.events.publish(subject, payload, msg_id=msg_id)
            events.append(subject)
        except GhafError as exc:  # the results and alerts are stored: a down bus loses no record
            _log.warning("monitor event not published", error=exc.headline, event=msg_id)
    if alerts and platform.settings.alerting.receivers:
        from ghaf.alerts.outbox import deliver_outbox

        try:
            deliver_outbox(platform, actor)
        except GhafError as exc:  # the outbox retries what was not sent
            _log.warning("alert delivery deferred", error=exc.headline)
    return replace(run, events=tuple(events))


def run_monitor(
    platform: Platform, actor: Actor, deployment: str, *, now: datetime | None = None
) -> MonitorRun:
    """Run the monitor of ``deployment`` now, due or not, over the window ending ``now``
    (default: the current time): its results stored, alerts fired and
    ``drift.detected`` published; its next due run comes one interval later.

    Raises:
        NotFoundError: no monitor is scheduled for ``deployment`` in the project.
        PermissionDeniedError: ``actor`` may not run it (``monitoring.run``).
    """
    moment = now or utcnow()
    run, alerts = _record_run(platform, actor, deployment, end=moment, now=moment)
    return _after_commit(platform, actor, run, alerts)


def run_due_monitors(
    platform: Platform, actor: Actor, *, now: datetime | None = None
) -> list[MonitorRun]:
    """Run every monitor of ``platform``'s project that is due at ``now`` (default: the
    current time), once, each over its next window (see ``due_window_end``). A monitor
    that fails is logged and left due (retried next time); a refusal of ``actor`` is
    raised."""
    moment = now or utcnow()
    runs = []
    for schedule in due_schedules(platform, moment):
        end, skipped = due_window_end(schedule, moment)
        try:
            run, alerts = _record_run(
                platform, actor, schedule.deployment, end=end, now=moment, skipped=skipped
            )
            runs.append(_after_commit(platform, actor, run, alerts))
        except PermissionDeniedError:
            raise
        except GhafError as exc:
            _log.warning("monitor run failed", deployment=schedule.deployment, error=exc.headline)
    return runs


def run_loop(
    platform: Platform,
    actor: Actor,
    *,
    every_s: float = 10.0,
    passes: int | None = None,
    until: float | None = None,
    on_run: Callable[[MonitorRun], None] | None = None,
    on_pass: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run due monitors every ``every_s`` seconds (1 to 3600) for ``passes`` passes or
    until ``until`` (epoch seconds), whichever comes first (neither: until interrupted);
    ``on_pass`` is called after each pass (the retraining loop acts on what it found).
    Returns how many runs it made."""
    from ghaf.errors import InvalidInputError

    if not 1.0 <= every_s <= 3600.0:
        raise InvalidInputError(
            f"the loop interval {every_s:g} s is out of range", hint="use 1 s to 3600 s"
        )
    made = done = 0
    while passes is None or done < passes:
        for run in run_due_monitors(platform, actor):
            made += 1
            if on_run is not None:
                on_run(run)
        if on_pass is not None:
            on_pass()
        done += 1
        if (passes is not None and done >= passes) or (until is not None and clock() >= until):
            break
        pause = every_s if until is None else min(every_s, max(0.0, until - clock()))
        sleep(pause)
    return made
