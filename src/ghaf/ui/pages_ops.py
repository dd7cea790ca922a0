"""Operations pages: deployments (traffic split, live requests/s, p50/p99 latency and
error rate, the experiment and canary on each), monitoring (drift over time per feature,
the latest drift report, data-quality results) and incidents (list, timeline,
Acknowledge and Resolve).

Each page reads through the service functions with the checks of the API's read routes:
a deployment needs ``deployment.read`` in its project (another project's reads as
missing, word for word as ``GET /api/v1/deployments/{name}``), its experiment and canary
``traffic.read``, monitors and the error-rate samples ``monitoring.read``, incidents
``incident.read``. The live figures come from what the server holds: the prediction log
its deployments write (``HOME/predictions``, read as the canary and experiment analyses
read it: requests per second, p50 and p99 of the scoring latency) and, for the error
rate, the samples a scheduled availability SLO keeps of the deployment's servers'
``/metrics`` (read within ``server.fetch_allow`` by the SLO loop, never by a page).
Every button posts to the public API (``/api/v1/incidents/{number}/ack|resolve``) with
the session's CSRF header, and is offered only to who may take that action.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Query
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ghaf.errors import GhafError, NotFoundError
from ghaf.platform import Platform
from ghaf.ui.render import error_page, is_htmx, page, to_login
from ghaf.ui.viewer import Viewer, viewer

router = APIRouter(prefix="/ui", include_in_schema=False)
LIVE_MINUTES = 60
"""The live charts' span: the last hour, one point a minute."""
LIVE_POLL_S = 5
"""How often the deployment page asks for fresh figures (htmx polling)."""
HEADLINE_MINUTES = 30
"""The headline figures cover the last this many full minutes (the current one is
still filling)."""
DRIFT_WINDOWS = 200
"""Monitor windows the drift chart draws at most (the newest)."""
OPEN_STATES = ("New", "In Progress", "On Hold")


def _base(who: Viewer, section: str, title: str) -> dict[str, Any]:
    return {"who": who, "section": section, "title": title, "csrf": who.session.csrf}


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY).decode()


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    return None


# Deployments -----------------------------------------------------------------------


@router.get("/deployments", name="ui_deployments")
async def deployments(request: Request) -> Response:
    """The deployments of the projects the viewer may ``deployment.read``, as
    ``GET /api/v1/deployments``, with the canary or experiment that holds each."""
    from ghaf.experiments.canary import list_canaries
    from ghaf.experiments.service import list_experiments
    from ghaf.serving.deployments import list_deployments

    who = await viewer(request)
    if who is None:
        return to_login(request)
    every = await run_in_threadpool(list_deployments, who.platform)
    allowed = set(who.readable("deployment.read", [d.project for d in every]))
    shown = [d for d in every if d.project in allowed]
    traffic = set(who.readable("traffic.read", allowed))
    canaries = await run_in_threadpool(list_canaries, who.platform)
    experiments = await run_in_threadpool(list_experiments, who.platform)
    held: dict[str, list[str]] = defaultdict(list)
    for c in canaries:
        if c.project in traffic and c.status in ("running", "paused"):
            held[c.deployment].append(f"canary {c.name} ({c.status}, {c.weight:g}%)")
    for e in experiments:
        if e.project in traffic and e.status in ("draft", "running"):
            held[e.deployment].append(f"experiment {e.name} ({e.status})")
    rows = [{"d": d, "split": _split(d.models), "held": held.get(d.name, [])} for d in shown]
    context = {**_base(who, "deployments", "Deployments"), "rows": rows}
    return page(request, "deployments.html", context)


def _split(models: dict[str, float]) -> list[dict[str, Any]]:
    """Each version's share of the traffic, in percent of the weights' sum."""
    total = sum(models.values())
    return [
        {"ref": ref, "weight": w, "percent": 100.0 * w / total if total else 0.0}
        for ref, w in models.items()
    ]


async def _readable_deployment(who: Viewer, name: str) -> Any:
    from ghaf.serving.deployments import get_deployment

    missing, hint = f"deployment {name!r} does not exist", "ghaf serve MODEL@ALIAS"
    try:
        found = await run_in_threadpool(get_deployment, who.platform, name)
    except NotFoundError as exc:
        raise NotFoundError(missing, hint=hint) from exc
    await who.authorize_hidden(
        "deployment.read", found.node, found.project, missing=missing, hint=hint
    )
    return found


def _buckets(now: float) -> np.ndarray:
    """The start (epoch s) of each minute of the live span, oldest first."""
    last = math.floor(now / 60.0) * 60.0
    return last - 60.0 * np.arange(LIVE_MINUTES - 1, -1, -1, dtype=np.float64)


_FILE_POINTS: dict[tuple[str, int, int, frozenset[str]], tuple[np.ndarray, np.ndarray]] = {}
"""(seconds, latency ms) of the answers in one complete log file, by its path, mtime and
size: a file is never rewritten, so a page polled every 5 s decrypts and filters each
file once, not once per poll."""
_FILE_POINTS_MAX = 512
_FILE_POINTS_LOCK = threading.Lock()


def _remember(
    key: tuple[str, int, int, frozenset[str]], points: tuple[np.ndarray, np.ndarray]
) -> None:
    with _FILE_POINTS_LOCK:  # pages are read in the thread pool
        if len(_FILE_POINTS) >= _FILE_POINTS_MAX:
            _FILE_POINTS.pop(next(iter(_FILE_POINTS)))  # the oldest entry
        _FILE_POINTS[key] = points


def _answers(table: Any, models: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """Seconds and latency (ms) of ``models``' answers in a log table, shadows left out
    (Arrow's compute on the columns, no Python object per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0 or "model" not in table.column_names:
        return np.empty(0), np.empty(0)
    keep = pc.is_in(table["model"], value_set=pa.array(sorted(models), pa.string()))
    if "shadow" in table.column_names:
        keep = pc.and_(keep, pc.invert(pc.fill_null(table["shadow"], False)))
    kept = table.filter(pc.fill_null(keep, False))
    seconds = kept["ts"].to_numpy(zero_copy_only=False) / 1000.0
    return seconds, kept["latency_ms"].to_numpy(zero_copy_only=False).astype(np.float64)


def _log_figures(platform: Platform, models: set[str], starts: np.ndarray) -> dict[str, Any]:
    """Requests/s, p50 and p99 scoring latency (ms) per minute of ``models``' answers in
    the server's prediction log (shadow answers left out: they answer no caller)."""
    from ghaf.monitoring.schedule import default_log_dir
    from ghaf.serving.predlog import log_files, prediction_log_keys, read_log_table

    since = float(starts[0])
    keys = prediction_log_keys(platform)
    wanted = frozenset(models)
    ts_parts, ms_parts = [], []
    for path in log_files(default_log_dir(platform), since=since):
        try:
            stat = path.stat()
            cache_key = (str(path), stat.st_mtime_ns, stat.st_size, wanted)
            points = _FILE_POINTS.get(cache_key)
            if points is None:
                table = read_log_table(path, ("ts", "model", "latency_ms", "shadow"), keys=keys)
                points = _answers(table, wanted)
                _remember(cache_key, points)
        except (OSError, ValueError):
            continue  # being written, or no Parquet: the next poll reads it
        ts_parts.append(points[0])
        ms_parts.append(points[1])
    ts = np.concatenate(ts_parts) if ts_parts else np.empty(0)
    ms = np.concatenate(ms_parts) if ms_parts else np.empty(0)
    index = np.floor((ts - since) / 60.0).astype(np.int64)
    inside = (index >= 0) & (index < len(starts))
    index, ms = index[inside], ms[inside]
    rps: list[float | None] = []
    p50: list[float | None] = []
    p99: list[float | None] = []
    for i in range(len(starts)):
        values = ms[index == i]
        rps.append(values.size / 60.0)
        p50.append(float(np.quantile(values, 0.5)) if values.size else None)
        p99.append(float(np.quantile(values, 0.99)) if values.size else None)
    recent = ms[(index >= len(starts) - 1 - HEADLINE_MINUTES) & (index < len(starts) - 1)]
    headline = {
        "rps": recent.size / (60.0 * HEADLINE_MINUTES),
        "p50": float(np.quantile(recent, 0.5)) if recent.size else None,
        "p99": float(np.quantile(recent, 0.99)) if recent.size else None,
    }
    return {"rps": rps, "p50": p50, "p99": p99, "answers": int(ms.size), "headline": headline}


def _error_rates(
    platform: Platform, deployment: str, starts: np.ndarray
) -> tuple[list[float | None], float | None, list[str]]:
    """The error rate (share of 5xx answers) per minute and over the headline's minutes,
    from the samples of the deployment's scheduled availability SLOs (each target's
    counters, differenced), and the names of those SLOs; None where nothing was counted."""
    from ghaf.slo.store import list_slos
    from ghaf.slo.tables import SLOSampleRow

    names = [s.name for s in list_slos(platform)
             if s.deployment == deployment and s.sli == "availability"]  # fmt: skip
    errors = np.zeros(len(starts))
    totals = np.zeros(len(starts))
    if names:
        query = (
            select(SLOSampleRow.name, SLOSampleRow.target, SLOSampleRow.ts,
                   SLOSampleRow.good, SLOSampleRow.total)
            .where(SLOSampleRow.project == platform.default_project,
                   SLOSampleRow.name.in_(names), SLOSampleRow.ts >= float(starts[0]) - 3600.0)
            .order_by(SLOSampleRow.ts)
        )  # fmt: skip
        series: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
        with platform.read_session() as session:
            for name, target, ts, good, total in session.execute(query):
                series[(name, target)].append((ts, good, total))
        for samples in series.values():
            for (_, g0, t0), (ts, g1, t1) in itertools.pairwise(samples):
                if t1 < t0 or g1 < g0:  # the server restarted: its counters began again
                    g0 = t0 = 0.0
                i = math.floor((ts - float(starts[0])) / 60.0)
                if 0 <= i < len(starts):
                    totals[i] += t1 - t0
                    errors[i] += (t1 - t0) - (g1 - g0)
    rates = [float(e / t) if t > 0 else None for e, t in zip(errors, totals, strict=True)]
    span = slice(len(starts) - 1 - HEADLINE_MINUTES, len(starts) - 1)
    counted = float(totals[span].sum())
    headline = float(errors[span].sum()) / counted if counted > 0 else None
    return rates, headline, names


def _live(platform: Platform, deployment: Any, may_monitor: bool) -> dict[str, Any]:
    now = datetime.now(UTC).timestamp()
    starts = _buckets(now)
    models = {ref.rpartition(":")[0] for ref in deployment.models}
    figures = _log_figures(platform, models, starts)
    rates: list[float | None] = [None] * len(starts)
    error_rate: float | None = None
    slos: list[str] = []
    if may_monitor:
        rates, error_rate, slos = _error_rates(platform, deployment.name, starts)
    return {
        "x": [float(s) for s in starts],
        "rps": figures["rps"],
        "p50": figures["p50"],
        "p99": figures["p99"],
        "error_rate": rates,
        "slos": slos,
        "answers": figures["answers"],
        "now": {**figures["headline"], "error_rate": error_rate},
        "headline_minutes": HEADLINE_MINUTES,
        "at": now,
    }


def _experiment_panel(platform: Platform, deployment: str) -> dict[str, Any] | None:
    """The deployment's newest experiment, its interim analysis and its verdict."""
    from ghaf.experiments.service import experiment_status, list_experiments

    found = [e for e in list_experiments(platform, platform.default_project)
             if e.deployment == deployment]  # fmt: skip
    if not found:
        return None
    newest = max(found, key=lambda e: e.created_at)
    doc = experiment_status(platform, newest.name)
    analysis = doc.get("analysis") or {}
    # A decided experiment keeps the analysis it was decided on; else the interim one.
    judged = (newest.decision or analysis).get("decision") or {}
    verdict = judged.get("verdict")
    reasons = list(judged.get("reasons") or [])
    return {
        "experiment": newest,
        "verdict": verdict,
        "final": bool(newest.decision),
        "reasons": reasons,
        "analysis_error": doc.get("analysis_error"),
        "units": analysis.get("units") if isinstance(analysis.get("units"), dict) else None,
    }


def _canary_panel(platform: Platform, deployment: str) -> dict[str, Any] | None:
    """The deployment's newest canary: its step, weight, state and latest decisions."""
    from ghaf.experiments.canary import canary_status, list_canaries

    found = [c for c in list_canaries(platform, platform.default_project)
             if c.deployment == deployment]  # fmt: skip
    if not found:
        return None
    newest = max(found, key=lambda c: c.created_at)
    doc = canary_status(platform, newest.name, limit=5)
    steps = list(newest.plan.get("steps") or [])
    return {
        "canary": newest,
        "steps": steps,
        "decisions": doc["decisions"],
        "latest": doc["decisions"][0] if doc["decisions"] else None,
    }


@router.get("/deployments/{name}", name="ui_deployment")
async def deployment(request: Request, name: str) -> Response:
    """One deployment: its traffic split, live requests/s, p50/p99 latency and error
    rate (refreshed by htmx polling), and the experiment and canary on it."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "deployments", f"Deployment {name}")
    try:
        found = await _readable_deployment(who, name)
    except GhafError as exc:
        return error_page(request, exc, base)
    here = who.platform.in_project(found.project)
    may_monitor = who.may("monitoring.read", found.project)
    live = await run_in_threadpool(_live, here, found, may_monitor)
    if is_htmx(request):
        return page(request, "_deployment_live.html", {"live": live, "name": name,
                    "live_json": _json(live), "poll": LIVE_POLL_S})  # fmt: skip
    experiment = canary = None
    may_traffic = who.may("traffic.read", found.project)
    if may_traffic:
        experiment = await run_in_threadpool(_experiment_panel, here, found.name)
        canary = await run_in_threadpool(_canary_panel, here, found.name)
    context = {
        **base,
        "d": found,
        "name": found.name,
        "split": _split(found.models),
        "split_json": _json({"refs": list(found.models), "weights": list(found.models.values())}),
        "live": live,
        "live_json": _json(live),
        "poll": LIVE_POLL_S,
        "may_monitor": may_monitor,
        "may_traffic": may_traffic,
        "experiment": experiment,
        "canary": canary,
        "minutes": LIVE_MINUTES,
    }
    return page(request, "deployment.html", context)


# Monitoring ------------------------------------------------------------------------


def _drift_series(results: list[Any]) -> dict[str, Any]:
    """Per feature, the PSI of each window (oldest first) and whether it alarmed."""
    ordered = sorted(results, key=lambda r: (r.window_end, r.id))
    features: list[str] = []
    for r in ordered:
        for c in ((r.report or {}).get("drift") or {}).get("columns", []):
            if c["column"] not in features:
                features.append(c["column"])
    psi: dict[str, list[float | None]] = {f: [] for f in features}
    alarms: dict[str, int] = dict.fromkeys(features, 0)
    for r in ordered:
        by = {c["column"]: c for c in ((r.report or {}).get("drift") or {}).get("columns", [])}
        for f in features:
            column = by.get(f)
            psi[f].append(_finite(column.get("psi")) if column else None)
            alarms[f] += 1 if column and column.get("alarm") else 0
    return {
        "x": [r.window_end.timestamp() for r in ordered],
        "features": features,
        "psi": psi,
        "alarms": alarms,
    }


def _monitoring(platform: Platform, projects: list[str], chosen: str | None) -> dict[str, Any]:
    from ghaf.monitoring.results import list_results, monitor_status
    from ghaf.monitoring.schedule import list_schedules

    schedules = list_schedules(platform, projects=projects)
    latest = {}
    for project in sorted({s.project for s in schedules}):
        for r in monitor_status(platform.in_project(project)):
            latest[(r.project, r.deployment, r.model_version)] = r
    names = [s.deployment for s in schedules]
    if chosen is not None and chosen not in names:
        raise NotFoundError(
            f"no monitor you may read watches deployment {chosen!r}",
            hint="choose one of the monitors listed on /ui/monitoring",
        )
    pick = next((s for s in schedules if s.deployment == chosen), None) if chosen else None
    pick = pick or (schedules[0] if schedules else None)
    detail: dict[str, Any] | None = None
    if pick is not None:
        here = platform.in_project(pick.project)
        results = list_results(here, pick.deployment, limit=DRIFT_WINDOWS)
        evaluated = [r for r in results if (r.report or {}).get("drift")]
        newest = evaluated[0] if evaluated else None
        report = (newest.report or {}) if newest else {}
        detail = {
            "schedule": pick,
            "series": _drift_series(evaluated),
            "latest": newest,
            "drift": (report.get("drift") or {}).get("columns", []),
            "drift_meta": {k: v for k, v in (report.get("drift") or {}).items() if k != "columns"},
            "reference": report.get("reference"),
            "quality": report.get("quality"),
            "prediction_drift": report.get("prediction_drift"),
            "results": results[:20],
        }
    rows = [
        {"s": s, "latest": [r for (p, d, _), r in latest.items()
                            if (p, d) == (s.project, s.deployment)]}
        for s in schedules
    ]  # fmt: skip
    return {"rows": rows, "detail": detail}


@router.get("/monitoring", name="ui_monitoring")
async def monitoring(
    request: Request,
    deployment: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """Monitors of the projects the viewer may ``monitoring.read``: each one's latest
    status; for one deployment (``?deployment=``, default the first), drift over time
    per feature, the latest drift report and its data-quality results."""
    from ghaf.monitoring.schedule import schedule_projects

    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "monitoring", "Monitoring")
    held = await run_in_threadpool(schedule_projects, who.platform)
    allowed = who.readable("monitoring.read", held)
    try:
        found = await run_in_threadpool(
            functools.partial(_monitoring, who.platform, allowed, deployment)
        )
    except GhafError as exc:
        return error_page(request, exc, base)
    detail = found["detail"]
    context = {
        **base,
        **found,
        "series_json": _json(detail["series"]) if detail else "",
    }
    return page(request, "monitoring.html", context)


# Incidents -------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


@router.get("/incidents", name="ui_incidents")
async def incidents(
    request: Request, state: Annotated[str | None, Query(max_length=16)] = None
) -> Response:
    """Incidents of the projects the viewer may ``incident.read``, newest first, as
    ``GET /api/v1/incidents``, with MTTA and MTTR per priority."""
    from ghaf.incidents.records import incident_metrics, incident_projects, list_incidents

    who = await viewer(request)
    if who is None:
        return to_login(request)
    every = await run_in_threadpool(incident_projects, who.platform)
    allowed = who.readable("incident.read", every)
    found = await run_in_threadpool(
        functools.partial(list_incidents, who.platform, projects=allowed, state=state or None)
    ) if allowed else []  # fmt: skip
    metrics = incident_metrics(found)
    context = {
        **_base(who, "incidents", "Incidents"),
        "incidents": found,
        "state": state or "",
        "states": ("New", "In Progress", "On Hold", "Resolved", "Closed", "Canceled"),
        "metrics": [
            {
                "priority": p,
                "count": m["count"],
                "mtta": _duration(m["mtta_s"]),
                "mttr": _duration(m["mttr_s"]),
            }
            for p, m in metrics.items()
        ],
    }
    return page(request, "incidents.html", context)


@router.get("/incidents/{number}", name="ui_incident")
async def incident(request: Request, number: str) -> Response:
    """One incident: what it is about, its timeline, and the Acknowledge and Resolve
    buttons (``POST /api/v1/incidents/{number}/ack`` and ``/resolve``) for who may."""
    from ghaf.incidents.records import check_number, get_incident, project_of_incident

    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "incidents", f"Incident {number}")
    missing = f"incident {number} does not exist"
    hint = "GET /api/v1/incidents lists the incidents you may read"
    try:
        check_number(number)
        project = await run_in_threadpool(project_of_incident, who.platform, number)
        if project is None:
            raise NotFoundError(missing, hint=hint)
        await who.authorize_hidden(
            "incident.read", f"incident:{number}", project, missing=missing, hint=hint
        )
        record, timeline = await run_in_threadpool(
            get_incident, who.platform.in_project(project), number
        )
    except GhafError as exc:
        return error_page(request, exc, base)
    context = {
        **base,
        "i": record,
        "timeline": timeline,
        "may_ack": record.state == "New" and who.may("incident.ack", project),
        "may_resolve": record.state in OPEN_STATES and who.may("incident.resolve", project),
    }
    return page(request, "incident.html", context)
