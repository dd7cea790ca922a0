"""The pages: runs (search, detail with metric charts), models (versions, approvals,
promotion), the audit trail and cost. Each reads through the service functions and the checks
of the API's read routes; every button writes through the API (``/api/v1``)."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Query
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ghaf.access.audit import verify_trail
from ghaf.access.audit_search import HOME_WIDE, AuditQuery, search_records
from ghaf.errors import GhafError, InvalidInputError, NotFoundError
from ghaf.evaluation.evaluate import EVALUATION_FILE, Evaluation
from ghaf.projects.service import project_names
from ghaf.registry.base import NEXT_STAGES, ModelVersion, parse_ref
from ghaf.registry.break_glass import list_break_glass
from ghaf.registry.card import render_body
from ghaf.registry.gates import gate_verdicts
from ghaf.registry.release import ReleasePolicy, get_release_policy, missing_requirements
from ghaf.registry.service import get_model_version, list_models, list_versions
from ghaf.security.checkpoints import last_checkpoint
from ghaf.tracking.base import Run
from ghaf.tracking.overlay import metric_curves, run_keys, runs_by_id
from ghaf.tracking.query import search_runs
from ghaf.tracking.service import (
    check_run_id,
    experiment_projects,
    get_metric_history,
    get_run,
    run_project,
)
from ghaf.ui.render import error_page, is_htmx, page, to_login
from ghaf.ui.viewer import Viewer, viewer

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50
MAX_COLUMNS = 8
MAX_CHARTS = 12
MAX_POINTS = 5_000
"""Points drawn per metric: longer histories are thinned evenly (the last point kept)."""
MAX_CHOSEN = 50
"""Metric (and param) columns a viewer may choose for the runs table."""
MAX_COMPARE = 100
"""Runs one comparison shows."""
MAX_AXES = 16
"""Params (and metrics) a parallel-coordinates chart has axes for, differing params first."""
COMPARE_POINTS = 1_000
"""Steps on a comparison chart's x axis (more than its pixels): longer are bucketed."""
COMPARE_CELLS = 50_000
"""Points on one comparison chart, all runs together: 100 runs get 500 steps each."""
STAGES = ("staging", "production", "archived")


def _base(who: Viewer, section: str, title: str) -> dict[str, Any]:
    return {"who": who, "section": section, "title": title, "csrf": who.session.csrf}


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    return RedirectResponse("/ui/runs", 303)


# Runs ------------------------------------------------------------------------------


def _columns(runs: list[Any], field: str) -> list[str]:
    keys: set[str] = set()
    for run in runs:
        keys |= set(getattr(run, field))
    return sorted(keys)[:MAX_COLUMNS]


def _chosen(values: list[str]) -> list[str]:
    """Column keys as the URL gives them (repeated, or comma-separated), deduplicated."""
    return _chosen_all(values)[:MAX_CHOSEN]


def _runs_query(**fields: Any) -> str:
    """The query string that keeps the page's filter, order and columns (for its links)."""
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        if isinstance(value, list):
            pairs += [(name, item) for item in value]
        elif value:
            pairs.append((name, str(value)))
    return urlencode(pairs)


@router.get("/runs", name="ui_runs")
async def runs(
    request: Request,
    q: Annotated[str, Query(max_length=4096)] = "",
    order: Annotated[str, Query(max_length=300)] = "attributes.start_time desc",
    page_token: Annotated[str, Query(max_length=256)] = "",
    experiment: Annotated[str, Query(max_length=250)] = "",
    metric: Annotated[list[str] | None, Query(max_length=2048)] = None,
    param: Annotated[list[str] | None, Query(max_length=2048)] = None,
    cols: Annotated[str, Query(pattern=r"^(|chosen)$")] = "",
) -> Response:
    """Runs of the viewer's projects: filtered in the search language, sorted, paged, with
    the metric and param columns the viewer chose (``cols=chosen&metric=auc&param=C``; by
    default the first few keys of the page)."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    owned = await run_in_threadpool(experiment_projects, who.platform)
    projects = who.readable("run.read", owned.values())
    error = ""
    found: list[Any] = []
    next_token = None
    try:
        result = await run_in_threadpool(
            functools.partial(
                search_runs,
                who.platform,
                q or None,
                experiments=[experiment] if experiment else None,
                order_by=[order] if order else (),
                max_results=PAGE_SIZE,
                page_token=page_token or None,
                projects=projects,
            )
        )
        found, next_token = result.runs, result.next_page_token
    except InvalidInputError as exc:
        error = exc.headline + (f" ({exc.hint})" if exc.hint else "")
    metric_keys, param_keys = await run_in_threadpool(
        run_keys, who.platform, projects, [experiment] if experiment else []
    )
    if cols:
        metric_columns, param_columns = _chosen(metric or []), _chosen(param or [])
    else:
        metric_columns, param_columns = _columns(found, "metrics"), _columns(found, "params")
    keep = {
        "q": q,
        "experiment": experiment,
        "cols": cols,
        "metric": metric_columns if cols else [],
        "param": param_columns if cols else [],
    }
    context = {
        **_base(who, "runs", "Runs"),
        "runs": found,
        "q": q,
        "order": order,
        "experiment": experiment,
        "experiments": sorted(n for n, p in owned.items() if p in set(projects)),
        "metric_columns": metric_columns,
        "param_columns": param_columns,
        "metric_keys": sorted(set(metric_keys) | set(metric_columns)),
        "param_keys": sorted(set(param_keys) | set(param_columns)),
        "keep": _runs_query(**keep),
        "keep_order": _runs_query(**keep, order=order),
        "next_token": next_token,
        "page_token": page_token,
        "error": error,
        "max_compare": MAX_COMPARE,
    }
    status = 400 if error and not is_htmx(request) else 200
    template = "_runs_table.html" if is_htmx(request) else "runs.html"
    return page(request, template, context, status=status)


def _thin(points: list[Any]) -> tuple[list[int], list[float]]:
    if len(points) > MAX_POINTS:
        stride = -(-len(points) // MAX_POINTS)
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return [p.step for p in points], [p.value for p in points]


def _input_link(node: str) -> dict[str, str]:
    """A run input (a lineage node id) as a link: a dataset version to its data page, a
    feature view version to the features page, anything else to the lineage graph."""
    kind, _, rest = node.partition(":")
    name, _, version = rest.rpartition(":")
    if not version.isdigit():
        name, version = rest, ""
    lineage = f"/ui/lineage?{urlencode({'node': node})}"
    if kind == "dataset" and name:
        href = f"/ui/data/{quote(name, safe='')}" + (f"?version={version}" if version else "")
    elif kind == "feature_view" and name:
        href = f"/ui/features#view-{quote(name, safe='')}"
    else:
        href = lineage
    label = {"dataset": "dataset", "feature_view": "feature view"}.get(kind, kind)
    return {"node": node, "kind": label, "name": name or rest, "version": version,
            "href": href, "lineage": lineage}  # fmt: skip


def _environment(env: dict[str, Any]) -> dict[str, Any]:
    """The facts of a run's captured environment worth a glance, and its packages."""
    facts = {
        label: env[key]
        for key, label in (("python", "Python"), ("implementation", "Implementation"),
                           ("os", "OS"), ("git", "Git commit"), ("argv", "Command"))
        if env.get(key)
    }  # fmt: skip
    if isinstance(facts.get("Command"), list):
        facts["Command"] = " ".join(str(part) for part in facts["Command"])
    hardware = env.get("hardware")
    if isinstance(hardware, dict):
        facts.update({f"Hardware: {k}": v for k, v in sorted(hardware.items())})
    packages = env.get("packages")
    return {"facts": facts, "packages": packages if isinstance(packages, dict) else {}}


@router.get("/runs/{run_id}", name="ui_run")
async def run(request: Request, run_id: str) -> Response:
    """One run: params, tags, inputs, environment, and a chart of each metric's history."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "runs", f"Run {run_id}")
    try:
        project = await run_in_threadpool(run_project, who.platform, run_id)
        await who.authorize_hidden(
            "run.read",
            f"run:{run_id}",
            project,
            missing=f"run {run_id} does not exist",
            hint="ghaf runs list",
        )
        found = await run_in_threadpool(get_run, who.platform, run_id)
        keys = sorted(found.metrics)[:MAX_CHARTS]
        histories = {}
        for key in keys:
            points = await run_in_threadpool(get_metric_history, who.platform, run_id, key)
            histories[key] = _thin(points)
    except GhafError as exc:
        return error_page(request, exc, base)
    charts = orjson.dumps(
        [{"key": key, "steps": s, "values": v} for key, (s, v) in histories.items()]
    ).decode()
    context = {
        **base,
        "run": found,
        "charts": charts,
        "keys": keys,
        "inputs": [_input_link(node) for node in found.inputs],
        "environment": _environment(found.env),
    }
    return page(request, "run.html", context)


# Compare ---------------------------------------------------------------------------


def _run_ids(values: list[str]) -> list[str]:
    """The run ids of ``?runs=a,b,c`` (or repeated ``runs``), in order, once each.

    Raises:
        InvalidInputError: none, more than :data:`MAX_COMPARE`, or a malformed id.
    """
    ids = _chosen_all(values)
    if not ids:
        raise InvalidInputError(
            "runs: no run to compare", hint="tick runs in the Runs table, then Compare selected"
        )
    if len(ids) > MAX_COMPARE:
        raise InvalidInputError(
            f"runs: {len(ids)} runs given, at most {MAX_COMPARE} can be compared at once",
            hint=f"choose {MAX_COMPARE} or fewer in the Runs table",
        )
    for run_id in ids:
        check_run_id(run_id)
    return ids


def _chosen_all(values: list[str]) -> list[str]:
    keys: dict[str, None] = {}
    for value in values:
        for key in value.split(","):
            if key.strip():
                keys[key.strip()] = None
    return list(keys)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parallel(runs: list[Run], params: list[str], metrics: list[str]) -> dict[str, Any]:
    """Axes (params, then metrics' latest values) and one line per run, for ECharts'
    parallel series: a param whose values are all numbers gets a value axis, else a
    category axis of its values."""
    dims: list[dict[str, Any]] = []
    rows: list[list[Any]] = [[] for _ in runs]
    for key in params[:MAX_AXES]:
        values = [run.params.get(key) for run in runs]
        present = [v for v in values if v is not None]
        if present and all(_is_number(v) for v in present):
            dims.append({"name": key, "kind": "param", "type": "value"})
            cells: list[Any] = [None if v is None else float(v) for v in values]
        else:
            cells = [v if v is not None else "(none)" for v in values]
            dims.append(
                {"name": key, "kind": "param", "type": "category", "data": sorted(set(cells))}
            )
        for row, cell in zip(rows, cells, strict=True):
            row.append(cell)
    for key in metrics[:MAX_AXES]:
        dims.append({"name": key, "kind": "metric", "type": "value"})
        for row, run in zip(rows, runs, strict=True):
            value = run.metrics.get(key)
            row.append(value if value is not None and math.isfinite(value) else None)
    return {"dims": dims, "rows": rows}


@router.get("/compare", name="ui_compare")
async def compare(
    request: Request, runs: Annotated[list[str] | None, Query(max_length=8192)] = None
) -> Response:
    """Up to :data:`MAX_COMPARE` runs side by side (``?runs=ID,ID,...``): each metric's
    curves overlaid (one chart per metric, one line per run), a parallel-coordinates chart
    of their params and latest metrics, and their params with the differing ones marked."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "runs", "Compare runs")
    try:
        ids = _run_ids(runs or [])
        found = await run_in_threadpool(runs_by_id, who.platform, ids)
        missing = [run_id for run_id in ids if run_id not in {r.run_id for r in found}]
        readable = set(who.readable("run.read", {run.project for run in found}))
        for run in found:
            if run.project not in readable:
                await who.authorize_hidden(
                    "run.read", f"run:{run.run_id}", run.project,
                    missing=f"run {run.run_id} does not exist", hint="ghaf runs list",
                )  # fmt: skip
        if missing:
            raise NotFoundError(f"run {missing[0]} does not exist", hint="ghaf runs list")
        metric_keys = sorted({key for run in found for key in run.metrics})
        charted = metric_keys[:MAX_CHARTS]
        steps = min(COMPARE_POINTS, max(200, COMPARE_CELLS // len(ids)))
        curves = [
            await run_in_threadpool(metric_curves, who.platform, ids, key, steps) for key in charted
        ]
    except GhafError as exc:
        return error_page(request, exc, base)
    param_keys = sorted({key for run in found for key in run.params})
    diff: list[dict[str, Any]] = []
    for key in param_keys:
        values = [run.params.get(key) for run in found]
        diff.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    diff.sort(key=lambda row: (not row["differs"], row["key"]))
    labels = [f"{run.name or run.run_id[:8]} ({run.run_id[:8]})" for run in found]
    data = {
        "runs": [{"id": r.run_id, "label": label} for r, label in zip(found, labels, strict=True)],
        "charts": [
            {"key": c.key, "steps": c.steps, "values": c.values, "thinned": c.thinned}
            for c in curves
        ],
        "parallel": _parallel(found, [row["key"] for row in diff], metric_keys),
    }
    context = {
        **base,
        "runs": found,
        "labels": labels,
        "curves": curves,
        "more_metrics": len(metric_keys) - len(charted),
        "diff": diff,
        "differing": sum(1 for row in diff if row["differs"]),
        "data": orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
    }
    return page(request, "compare.html", context)


# Models ----------------------------------------------------------------------------


@router.get("/models", name="ui_models")
async def models(request: Request) -> Response:
    """Registered models of the viewer's projects."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    every = await run_in_threadpool(list_models, who.platform)
    allowed = set(who.readable("model.read", [project for _, _, project in every]))
    shown = [
        {"name": name, "latest": latest, "project": project}
        for name, latest, project in every
        if project in allowed
    ]
    return page(request, "models.html", {**_base(who, "models", "Models"), "models": shown})


async def _readable_model(who: Viewer, name: str) -> ModelVersion:
    missing, hint = f"model {name!r} is not registered", "ghaf models list"
    latest = await run_in_threadpool(get_model_version, who.platform, name)
    await who.authorize_hidden(
        "model.read", f"model:{latest.name}", latest.project, missing=missing, hint=hint
    )
    return latest


def _actions(
    who: Viewer, version: ModelVersion, policy: ReleasePolicy, missing: list[str]
) -> dict[str, Any]:
    """What the viewer is offered on ``version``: what the policy lets it ask for. Four
    eyes: its author (or trainer) is never offered Approve; the service refuses anyway.
    A protected stage the version does not yet meet the release policy for is offered
    through break-glass too, when the policy allows it (a reason, then a second person)."""
    project = version.project
    approvers = {a.approver for a in version.approval_records} | set(version.approvals)
    promote = [
        stage
        for stage in STAGES
        if stage in NEXT_STAGES.get(version.stage, ()) and who.may("model.promote", project)
    ]
    glass = (
        [stage for stage in STAGES if stage != version.stage and policy.protects(stage=stage)]
        if missing and policy.break_glass.allowed and who.may("model.break_glass_request", project)
        else []
    )
    return {
        "approve": who.may("model.approve", project)
        and version.created_by != who.actor.name
        and who.actor.name not in approvers
        and version.stage != "archived",
        "promote": promote,
        "break_glass": glass,
        "confirm": who.may("model.break_glass", project),
    }


def _fields(schema: Any) -> list[dict[str, Any]]:
    fields = schema.get("fields") if isinstance(schema, dict) else None
    return [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []


def _evaluation(platform: Any, version: ModelVersion) -> dict[str, Any]:
    """The version's recorded evaluation: its ``evaluation.json`` (metrics, slices), else
    the metrics registered with it."""
    entry = version.files.get(EVALUATION_FILE)
    if entry is None:
        return {"source": "metrics registered with it", "metrics": dict(version.metrics),
                "slices": {}}  # fmt: skip
    try:
        text = platform.artifacts.read_bytes(str(entry["digest"])).decode()
        found = Evaluation.from_json(text)
    except (ValueError, TypeError):
        return {"source": f"{EVALUATION_FILE} (unreadable)", "metrics": {}, "slices": {}}
    return {"source": EVALUATION_FILE, "metrics": found.flat_metrics(), "slices": found.slices}


def _version_details(platform: Any, version: ModelVersion, policy: ReleasePolicy) -> dict[str, Any]:
    """Signature, evaluation, gate verdicts, card and release readiness of one version."""
    missing = missing_requirements(platform, version, policy, evaluate_gates=False)
    return {
        "inputs": _fields(version.signature.get("inputs")),
        "outputs": _fields(version.signature.get("outputs")),
        "evaluation": _evaluation(platform, version),
        "verdicts": gate_verdicts(platform, version.ref, latest=True),
        # render_body escapes every text of the card; only its own tags are markup.
        "card": Markup(render_body(version.card, shift=2)) if version.card else "",  # noqa: S704 # nosec B704
        "missing": missing,
    }


@router.get("/models/{name}", name="ui_model")
async def model(request: Request, name: str) -> Response:
    """A model: each version with its stage, aliases, approvals, signature, evaluation,
    gate verdicts and card, its break-glass requests, and the Approve, Promote,
    Break-glass and Confirm buttons the viewer may press."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "models", f"Model {name}")
    try:
        if parse_ref(name).name != name:
            raise NotFoundError(f"model {name!r} is not registered", hint="ghaf models list")
        latest = await _readable_model(who, name)
        versions = await run_in_threadpool(list_versions, who.platform, name)
        stored = await run_in_threadpool(get_release_policy, who.platform, latest.project)
        details = [
            await run_in_threadpool(_version_details, who.platform, v, stored.policy)
            for v in versions
        ]
        requests = [
            r for r in await run_in_threadpool(list_break_glass, who.platform) if r.model == name
        ]
    except GhafError as exc:
        return error_page(request, exc, base)
    rows = [
        (v, _actions(who, v, stored.policy, d["missing"]), d,
         [r for r in requests if r.version == v.version])
        for v, d in reversed(list(zip(versions, details, strict=True)))
    ]  # fmt: skip
    context = {**base, "name": name, "versions": rows, "policy": stored,
               "min_reason": stored.policy.break_glass.min_reason_chars}  # fmt: skip
    return page(request, "model.html", context)


# Audit -----------------------------------------------------------------------------


def _day(text: str, field: str) -> datetime | None:
    """The filter's bound; a date alone as ``until`` means the end of that day (a person
    who picks "until today" means today's records too; the search's bound is exclusive)."""
    if not text:
        return None
    try:
        bound = datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInputError(
            f"{field} {text!r} is not a date", hint="use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from exc
    if field == "until" and "T" not in text and " " not in text:
        bound += timedelta(days=1)
    return bound


@router.get("/audit", name="ui_audit")
async def audit(
    request: Request,
    actor: Annotated[str, Query(max_length=256)] = "",
    action: Annotated[str, Query(max_length=128)] = "",
    outcome: Annotated[str, Query(pattern=r"^(|allowed|denied|failed)$")] = "",
    resource: Annotated[str, Query(max_length=512)] = "",
    since: Annotated[str, Query(max_length=32)] = "",
    until: Annotated[str, Query(max_length=32)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The audit records of the projects the viewer audits, newest first, filtered."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "audit", "Audit")
    names = await run_in_threadpool(project_names, who.platform)
    home_wide = who.may("audit.read", HOME_WIDE)
    projects = [HOME_WIDE] if home_wide else who.readable("audit.read", names)
    filters = {"actor": actor, "action": action, "outcome": outcome, "resource": resource,
               "since": since, "until": until}  # fmt: skip
    records: list[dict[str, Any]] = []
    error = ""
    if projects:
        try:
            query = AuditQuery(
                actor=actor,
                action=action,
                outcome=outcome,
                resource=resource,
                since=_day(since, "since"),
                until=_day(until, "until"),
                before=before,
                limit=PAGE_SIZE,
            )
            records = await run_in_threadpool(search_records, who.platform, projects, query)
        except InvalidInputError as exc:
            error = exc.headline + (f" ({exc.hint})" if exc.hint else "")
    context = {
        **base,
        "records": records,
        "filters": filters,
        "projects": projects,
        "home_wide": home_wide,
        "error": error,
        "older": records[-1]["seq"] if len(records) == PAGE_SIZE else None,
    }
    return page(request, "audit.html", context, status=400 if error else 200)


@router.get("/audit/verify", name="ui_audit_verify")
async def audit_verify(request: Request) -> Response:
    """The chain verified against the signed checkpoints, and the last checkpoint (a
    fragment the audit page loads; home-wide auditors only, as ``GET /audit/verify``)."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "audit", "Audit verification")
    try:
        await who.authorize("audit.read", "audit:*", HOME_WIDE)
        report = await run_in_threadpool(verify_trail, who.platform)
        checkpoint = await run_in_threadpool(last_checkpoint, who.platform.settings)
    except GhafError as exc:
        return error_page(request, exc, base)
    context = {**base, "report": report, "checkpoint": checkpoint}
    return page(request, "_audit_verify.html", context)


# Cost ------------------------------------------------------------------------------

GROUPINGS = ("project", "model", "deployment", "user")


@router.get("/cost", name="ui_cost")
async def cost(
    request: Request,
    by: Annotated[str, Query(max_length=32)] = "project",
    since: Annotated[str, Query(max_length=64)] = "7d",
) -> Response:
    """The cost report over the projects the viewer may read costs of: the document
    ``GET /api/v1/cost`` answers and ``ghaf cost report`` prints, as a table."""
    from ghaf.cost.report import check_grouping, cost_report, parse_since
    from ghaf.metadata.base import utcnow

    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "cost", "Cost")
    report: dict[str, Any] | None = None
    error = ""
    try:
        check_grouping(by)
        start = parse_since(since, utcnow())
        report = await run_in_threadpool(
            functools.partial(cost_report, who.platform, who.actor, by=by, since=start)
        )
    except InvalidInputError as exc:
        error = exc.headline + (f" ({exc.hint})" if exc.hint else "")
    context = {**base, "report": report, "by": by, "since": since, "error": error,
               "groupings": GROUPINGS}  # fmt: skip
    return page(request, "cost.html", context, status=400 if error else 200)
