"""Which lineage a reader may see, one answer for the API and the web UI.

Lineage crosses every area (datasets, feature views, runs, models, deployments), so a
node's project is looked up in each; a reader sees the nodes of projects they may
``lineage.read``, and a node they may not read looks exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ghaf.data.catalog import project_of
from ghaf.data.store import get_dataset
from ghaf.data.transforms import get_transform
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.features.classification import view_project
from ghaf.features.registry import get_feature_view
from ghaf.lineage.graph import downstream, edges_of, upstream
from ghaf.platform import Platform
from ghaf.registry.service import get_model_version
from ghaf.serving.deployments import get_deployment
from ghaf.tracking.service import run_project


def dataset_missing(ref: str) -> NotFoundError:
    """What a missing dataset version reads as over HTTP; one the caller may not read
    reads exactly the same (headline and hint), so names in other projects do not show."""
    name, _, version = ref.removeprefix("dataset:").partition(":")
    what = f"dataset {name!r}" if version in ("", "latest") else f"dataset version {name}:{version}"
    return NotFoundError(f"{what} does not exist", hint="GET /api/v1/datasets lists yours")


def node_project(platform: Platform, node: str) -> str | None:
    """The project a lineage node belongs to; None when it is not (or no longer) known."""
    kind, _, rest = node.partition(":")
    try:
        if kind == "dataset":
            return project_of(platform, get_dataset(platform, rest))
        if kind == "transform":
            output = str(get_transform(platform, rest)["output"])
            return project_of(platform, get_dataset(platform, output))
        if kind == "run":
            return run_project(platform, rest)
        if kind == "model":
            return get_model_version(platform, rest).project
        if kind == "feature_view":
            name, _, number = rest.partition(":")
            view, _ = get_feature_view(platform, name, int(number) if number.isdigit() else None)
            return view_project(platform, view)
        if kind == "deployment":
            return get_deployment(platform, rest).project
    except (NotFoundError, InvalidInputError):
        return None
    return None


@dataclass(frozen=True)
class VisibleGraph:
    """A node's lineage as one reader may see it."""

    upstream: list[str]
    downstream: list[str]
    edges: list[dict[str, str]]


class LineageReader(Protocol):
    """Who reads lineage: an API caller or a UI viewer (the same checks for both)."""

    @property
    def platform(self) -> Platform: ...

    def readable(self, action: str, projects: Iterable[str]) -> list[str]: ...


def visible_graph(who: LineageReader, node: str) -> VisibleGraph:
    """What lineage ``node`` has, with every node of a project the caller may not
    ``lineage.read`` left out (so are the edges that touch one)."""
    platform = who.platform
    up, down = upstream(platform, node), downstream(platform, node)
    edges = edges_of(platform, node)
    projects = {n: node_project(platform, n) for n in {*up, *down}}
    allowed = set(who.readable("lineage.read", [p for p in projects.values() if p]))
    shown = {n for n, p in projects.items() if p in allowed} | {node}
    return VisibleGraph(
        [n for n in up if n in shown],
        [n for n in down if n in shown],
        [
            {"src": e.src, "dst": e.dst, "relation": e.relation}
            for e in edges
            if e.src in shown and e.dst in shown
        ],
    )
