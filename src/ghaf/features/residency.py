"""Residency tags of feature views: their own classification, their raw sources, upstream.

A view's tags are its declared ``classification`` and tag values, the tags of the
dataset versions it reads now (not only those it read when applied), what is known
of a raw Parquet source (the dataset whose bytes it holds, tags Ghaf wrote into it),
and everything upstream of it in the lineage graph. A raw source nothing is known of
is unclassified: declare ``classification`` on a view over raw data to classify it.

:func:`lineage_tags` is :func:`ghaf.data.residency.object_tags` with feature views'
own tags added, for any node whose upstream may hold one (training sets, runs, models).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ghaf.access.residency import RESIDENCY_ACTION, check_residency
from ghaf.data import get_dataset
from ghaf.data.residency import UNKNOWN_TAG, Tags, file_tags, merge_tags, object_tags
from ghaf.errors import NotFoundError
from ghaf.features.definitions import FeatureView, Transform
from ghaf.features.registry import get_feature_view
from ghaf.lineage import upstream
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.security.residency import ResidencyDecision


def view_residency_tags(platform: Platform, view: FeatureView, version: int) -> Tags:
    """Every tag the data of ``view`` (version ``version``) carries, with its origin."""
    node = f"feature_view:{view.name}:{version}"
    tags = _own_tags(platform, view, node)
    return merge_tags(tags, object_tags(platform, node))


def _own_tags(platform: Platform, view: FeatureView, node: str) -> Tags:
    tags: Tags = {}
    if view.classification:
        tags.setdefault(view.classification, []).append(f"{node} classification")
    for key, value in sorted(view.tags.items()):
        tags.setdefault(value, []).append(f"{node} tag {key}")
    for source in _sources(view):
        if source.startswith("dataset:"):
            current = get_dataset(platform, source.removeprefix("dataset:")).node
            found = object_tags(platform, current)
            tags = merge_tags(
                tags, {t: [f"{o}, read by {node}"] for t, os in found.items() for o in os}
            )
            continue
        for path in _raw_files(source):
            found = file_tags(platform, path)
            tags = merge_tags(
                tags, {t: [f"{o}, read by {node}"] for t, os in found.items() for o in os}
            )
    return tags


def _sources(view: FeatureView) -> list[str]:
    if isinstance(view.source, Transform):
        return list(view.source.inputs.values())
    return [view.source]


def _raw_files(source: str) -> list[Path]:
    path = source.removeprefix("file://")
    if any(ch in path for ch in "*?["):  # the files DuckDB's read_parquet will read
        import duckdb  # on use: importing this module must not load DuckDB

        with duckdb.connect() as con:
            rows = con.execute("SELECT file FROM glob(?)", [path]).fetchall()
        return sorted(Path(row[0]) for row in rows)
    candidate = Path(path)
    if candidate.is_dir():
        return sorted(p for p in candidate.rglob("*") if p.is_file())
    return [candidate] if candidate.is_file() else []


def lineage_tags(platform: Platform, node: str) -> Tags:
    """:func:`~ghaf.data.residency.object_tags` plus the own tags of every feature view
    at or upstream of ``node``."""
    tags = object_tags(platform, node)
    for current in [node, *upstream(platform, node)]:
        if not current.startswith("feature_view:"):
            continue
        name, _, number = current.removeprefix("feature_view:").partition(":")
        try:
            view, version = get_feature_view(platform, name, int(number) if number else None)
        except (NotFoundError, ValueError):
            own = {UNKNOWN_TAG: [f"{current} is not in this home: its tags are unknown"]}
        else:
            own = _own_tags(platform, view, f"feature_view:{name}:{version}")
        if current != node:
            own = {t: [f"{o}, upstream of {node}" for o in os] for t, os in own.items()}
        tags = merge_tags(tags, own)
    return tags


def check_lineage_residency(
    platform: Platform,
    sources: Iterable[str],
    target_region: str,
    *,
    actor: Actor | None = None,
    resource: str = "data",
    action: str = RESIDENCY_ACTION,
) -> ResidencyDecision:
    """Refuse (and audit) storing something derived from ``sources`` in ``target_region``;
    the tags are those of :func:`lineage_tags` of every source."""
    tags = merge_tags(*(lineage_tags(platform, s) for s in sources))
    return check_residency(
        platform, tags, target_region, actor=actor, resource=resource, action=action
    )


def column_tags_for(
    columns: Sequence[str],
    views: Sequence[tuple[FeatureView, int, Sequence[str]]],
    platform: Platform,
) -> dict[str, str]:
    """Column classifications of a retrieval result: each feature column carries the
    most sensitive classification of its view (``pii`` before ``sensitive`` before
    others), so a training set keeps what its views declared."""
    tagged: dict[str, str] = {}
    for view, version, names in views:
        tags = view_residency_tags(platform, view, version)
        tag = strongest_classification(tags)
        if tag is None:
            continue
        for name in names:
            for column in (name, f"{view.name}__{name}"):
                if column in columns:
                    tagged[column] = tag
    return tagged


def strongest_classification(tags: Iterable[str]) -> str | None:
    """The most sensitive classification among ``tags`` (``pii``, then ``sensitive``,
    then others by name); ``resident:`` tags are residency, not classification."""
    order = {"pii": 0, "sensitive": 1}
    kinds = sorted(
        (t for t in tags if not t.startswith("resident:")), key=lambda t: (order.get(t, 2), t)
    )
    return kinds[0] if kinds else None
