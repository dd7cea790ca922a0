"""Data and features pages: datasets (versions, profiles, contract results, a diff of
two versions), feature views with their freshness, and the interactive lineage graph.

Each page reads through the service functions with the checks of the API's read routes:
a dataset version of a project the viewer may not ``dataset.read`` is not listed (and
reads as missing, word for word as ``GET /api/v1/datasets/...`` says it), feature views
need ``features.read`` in their project, and the lineage graph is the one ``GET
/api/v1/lineage/{node}`` answers (:func:`ghaf.provenance.visible_graph`): nodes of
projects the viewer may not ``lineage.read`` are left out, and so are their edges.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ghaf.data.base import DatasetVersion, check_name
from ghaf.data.diff import DatasetDiff, diff_versions
from ghaf.data.store import dataset_projects, list_versions, version_projects
from ghaf.errors import GhafError, InvalidInputError, NotFoundError
from ghaf.features.materialize import MaterializationResult, materialization_history
from ghaf.features.registry import StoredDefinition, definition_projects, list_definitions
from ghaf.lineage.graph import check_node, edges_of
from ghaf.platform import Platform
from ghaf.provenance import dataset_missing, node_project, visible_graph
from ghaf.ui.render import error_page, page, to_login
from ghaf.ui.viewer import Viewer, viewer

router = APIRouter(prefix="/ui", include_in_schema=False)
MAX_GRAPH_NODES = 300
"""Nodes one lineage graph draws; past it, the first half of each side by name is drawn,
and the page says so."""
PROFILE_STATS = ("count", "nulls", "distinct", "min", "max", "mean", "std")
FEATURES_READ = "features.read"


def _base(who: Viewer, section: str, title: str) -> dict[str, Any]:
    return {"who": who, "section": section, "title": title, "csrf": who.session.csrf}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


# Datasets --------------------------------------------------------------------------


@router.get("/data", name="ui_data")
async def data(request: Request) -> Response:
    """The datasets of the projects the viewer may ``dataset.read``, as ``GET /datasets``."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    every = await run_in_threadpool(dataset_projects, who.platform)
    allowed = set(who.readable("dataset.read", [d["project"] for d in every]))
    shown = [d for d in every if d["project"] in allowed]
    return page(request, "data.html", {**_base(who, "data", "Data"), "datasets": shown})


def _readable_versions(who: Viewer, name: str) -> list[tuple[DatasetVersion, str]]:
    """(version, project) of every version of ``name`` the viewer may read, oldest first;
    none reads as the API's missing dataset."""
    try:
        check_name(name)
    except InvalidInputError as exc:
        raise dataset_missing(name) from exc
    found = list_versions(who.platform, name)
    projects = version_projects(who.platform, name)
    allowed = set(who.readable("dataset.read", projects.values()))
    readable = [(v, projects[v.version]) for v in found if projects.get(v.version) in allowed]
    if not readable:
        raise dataset_missing(name)
    return readable


def _profile_rows(version: DatasetVersion) -> list[dict[str, Any]]:
    columns = version.profile.get("columns", {}) if version.profile else {}
    rows = []
    for field in version.schema:
        stats = columns.get(field.name, {})
        rows.append(
            {
                "name": field.name,
                "type": str(field.type),
                "tag": version.column_tags.get(field.name, ""),
                **{key: _short(stats.get(key)) for key in PROFILE_STATS},
            }
        )
    return rows


def _diff_rows(changes: DatasetDiff) -> list[dict[str, Any]]:
    return [
        {"column": column, "stat": stat, "a": _short(a), "b": _short(b)}
        for column, stats in changes.stats.items()
        for stat, (a, b) in stats.items()
    ]


def _pick(number: int | None, numbers: list[int], field: str, fallback: int) -> int:
    if number is None:
        return fallback
    if number not in numbers:
        raise InvalidInputError(
            f"{field}: version {number} is not a version you may read",
            hint=f"choose one of {', '.join(str(n) for n in numbers)}",
        )
    return number


@router.get("/data/{name}", name="ui_dataset")
async def dataset(
    request: Request,
    name: str,
    version: Annotated[int | None, Query(ge=1)] = None,
    a: Annotated[int | None, Query(ge=1)] = None,
    b: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """A dataset: its versions with row counts and contract results, one version's
    profile and checks (``version``, default the latest), and the diff from version ``a``
    to version ``b`` (default: the one before the latest to the latest)."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "data", f"Dataset {name}")
    try:
        readable = await run_in_threadpool(_readable_versions, who, name)
    except GhafError as exc:
        return error_page(request, exc, base)
    numbers = [v.version for v, _ in readable]
    by_number = {v.version: (v, p) for v, p in readable}
    error = ""
    changes: DatasetDiff | None = None
    shown = numbers[-1]
    first, second = (numbers[-2] if len(numbers) > 1 else numbers[-1]), numbers[-1]
    try:
        shown = _pick(version, numbers, "version", shown)
        first = _pick(a, numbers, "a", first)
        second = _pick(b, numbers, "b", second)
        if first != second:
            changes = await run_in_threadpool(
                diff_versions, who.platform, f"{name}:{first}", f"{name}:{second}"
            )
    except InvalidInputError as exc:
        error = exc.headline + (f" ({exc.hint})" if exc.hint else "")
    current, project = by_number[shown]
    context = {
        **base,
        "name": name,
        "versions": [v for v, _ in reversed(readable)],
        "projects": {v.version: p for v, p in readable},
        "current": current,
        "project": project,
        "profile": _profile_rows(current),
        "checks": (current.validation or {}).get("checks", []),
        "numbers": numbers,
        "a": first,
        "b": second,
        "diff": changes,
        "diff_rows": _diff_rows(changes) if changes else [],
        "error": error,
    }
    return page(request, "dataset.html", context, status=400 if error else 200)


# Features --------------------------------------------------------------------------


def _freshness(
    spec: dict[str, Any], last: MaterializationResult | None, now: datetime
) -> dict[str, Any]:
    """When ``last`` materialized the view, its age, and whether that is within its TTL."""
    ttl = spec.get("ttl_seconds")
    if last is None:
        return {"state": "never", "label": "never materialized", "age": None, "ttl": ttl}
    age = max(0.0, (now - last.watermark).total_seconds())
    if ttl is None:
        state, label = "fresh", "no TTL"
    elif age <= float(ttl):
        state, label = "fresh", "fresh"
    else:
        state, label = "stale", "stale"
    return {"state": state, "label": label, "age": age, "ttl": ttl}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    delta = timedelta(seconds=round(seconds))
    if delta.days:
        return f"{delta.days}d {delta.seconds // 3600}h"
    hours, rest = divmod(delta.seconds, 3600)
    return f"{hours}h {rest // 60}m" if hours else f"{rest // 60}m {rest % 60}s"


def _views(platform: Platform, projects: list[str]) -> list[dict[str, Any]]:
    stored: list[StoredDefinition] = list_definitions(platform, projects=projects)
    now = datetime.now(UTC)
    rows = []
    for item in stored:
        if item.kind != "feature_view":
            continue
        history = materialization_history(platform, item.name)
        last = history[0] if history else None
        fresh = _freshness(item.spec, last, now)
        source = item.spec.get("source")
        dataset = (
            str(source).removeprefix("dataset:").partition(":")[0]
            if isinstance(source, str) and source.startswith("dataset:")
            else None
        )
        rows.append(
            {
                "name": item.name,
                "version": item.version,
                "project": item.project,
                "entities": item.spec.get("entities", []),
                "features": [f["name"] for f in item.spec.get("features", [])],
                "source": source if isinstance(source, str) else "SQL transform",
                "dataset": dataset,
                "last": last,
                "fresh": fresh,
                "age": _duration(fresh["age"]),
                "ttl": _duration(fresh["ttl"]),
                "node": f"feature_view:{item.name}:{item.version}",
            }
        )
    return rows


@router.get("/features", name="ui_features")
async def features(request: Request) -> Response:
    """Feature views of the projects the viewer may ``features.read``: entities,
    features, source, last materialization and its age against the view's TTL."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    held = await run_in_threadpool(definition_projects, who.platform)
    allowed = who.readable(FEATURES_READ, held)
    views = await run_in_threadpool(_views, who.platform, allowed) if allowed else []
    return page(request, "features.html", {**_base(who, "features", "Features"), "views": views})


# Lineage ---------------------------------------------------------------------------

KIND_LABELS = {
    "dataset": "Dataset",
    "transform": "Transform",
    "feature_view": "Feature view",
    "run": "Run",
    "model": "Model",
    "deployment": "Deployment",
    "predictions": "Predictions",
}


def node_href(node: str) -> str:
    """The page a lineage node opens: its run, model, dataset, feature view or
    deployment; a node with no page of its own centres the graph on itself."""
    kind, _, rest = node.partition(":")
    if kind == "run":
        return f"/ui/runs/{quote(rest, safe='')}"
    if kind == "model":
        return f"/ui/models/{quote(rest.rpartition(':')[0] or rest, safe='')}"
    if kind == "dataset":
        name, _, number = rest.partition(":")
        return f"/ui/data/{quote(name, safe='')}" + (f"?version={number}" if number else "")
    if kind == "feature_view":
        return f"/ui/features#view-{quote(rest.partition(':')[0], safe='')}"
    if kind == "deployment":
        return f"/ui/deployments/{quote(rest, safe='')}"
    return "/ui/lineage?node=" + quote(node, safe="")


def _label(node: str) -> str:
    kind, _, rest = node.partition(":")
    if kind == "run":
        return f"run {rest[:8]}"
    return rest


def _graph(who: Viewer, node: str) -> dict[str, Any]:
    """The graph of ``node``: the nodes the API's lineage answer shows, and every edge
    between two of them."""
    found = visible_graph(who, node)
    nodes = [*found.upstream, node, *found.downstream]
    cut = len(nodes) > MAX_GRAPH_NODES
    if cut:
        keep = MAX_GRAPH_NODES // 2
        nodes = [*found.upstream[:keep], node, *found.downstream[:keep]]
    shown = set(nodes)
    edges = {
        (e.src, e.dst, e.relation)
        for n in nodes
        for e in edges_of(who.platform, n)
        if e.src in shown and e.dst in shown
    }
    side = dict.fromkeys(found.upstream, "upstream") | dict.fromkeys(found.downstream, "downstream")
    # A dataset version a model wrote (batch scoring: ``ghaf predict ... dataset:NAME``)
    # is drawn as predictions; only edges the viewer sees decide it.
    scored = {d for s, d, _ in edges if s.startswith("model:") and d.startswith("dataset:")}
    kinds = {n: "predictions" if n in scored else n.partition(":")[0] for n in nodes}
    items = [
        {
            "id": n,
            "kind": kinds[n],
            "kind_label": KIND_LABELS.get(kinds[n], kinds[n]),
            "label": _label(n),
            "href": node_href(n),
            "centre": "/ui/lineage?node=" + quote(n, safe=""),
            "side": "focus" if n == node else side.get(n, ""),
        }
        for n in nodes
    ]
    elements = [{"data": {k: item[k] for k in ("id", "kind", "label", "href", "side")}}
                for item in items]  # fmt: skip
    elements += [
        {"data": {"id": f"e{i}", "source": s, "target": d, "label": r}}
        for i, (s, d, r) in enumerate(sorted(edges))
    ]
    return {"items": items, "elements": elements, "edges": sorted(edges), "cut": cut}


@router.get("/lineage", name="ui_lineage")
async def lineage(request: Request, node: Annotated[str, Query(max_length=300)] = "") -> Response:
    """The interactive lineage graph of ``node``: everything upstream and downstream of
    it that ``GET /api/v1/lineage/{node}`` shows the viewer; a click on a node opens its
    page."""
    who = await viewer(request)
    if who is None:
        return to_login(request)
    base = _base(who, "data", f"Lineage of {node}" if node else "Lineage")
    if not node:
        return page(request, "lineage.html", {**base, "node": "", "graph": None})
    try:
        check_node(node)
        project = await run_in_threadpool(node_project, who.platform, node)
        missing = f"lineage node {node!r} has no edges"
        if project is None:
            raise NotFoundError(missing, hint="check the node id")
        await who.authorize_hidden(
            "lineage.read", node, project, missing=missing, hint="check the node id"
        )
        graph = await run_in_threadpool(functools.partial(_graph, who, node))
    except GhafError as exc:
        return error_page(request, exc, base)
    context = {
        **base,
        "node": node,
        "project": project,
        "graph": graph,
        "elements": orjson.dumps(graph["elements"]).decode(),
        "limit": MAX_GRAPH_NODES,
    }
    return page(request, "lineage.html", context)
