"""Residency of derived objects: their tags are those of every dataset upstream of them.

Derived artifacts (features, training sets, models) inherit the classification and
residency tags of every dataset upstream of them in the lineage graph; each write of
one calls :func:`check_derived_residency` (or :func:`check_object_residency`) with the
target region, before any byte is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from sqlalchemy import select

from ghaf.access.residency import check_residency
from ghaf.data.base import parse_ref
from ghaf.data.tables import DatasetVersionRow
from ghaf.lineage import upstream
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.security.residency import ResidencyDecision


def object_tags(platform: Platform, node: str) -> dict[str, list[str]]:
    """Tags of a lineage node and of every dataset upstream of it, with their origin.

    A dataset version contributes its column classifications and ``resident:R`` for
    its residency ``R``.
    """
    nodes = [node, *upstream(platform, node)]
    tags: dict[str, list[str]] = {}
    for current in nodes:
        if not current.startswith("dataset:"):
            continue
        for tag, origin in _dataset_tags(platform, current):
            via = origin if current == node else f"{origin}, upstream of {node}"
            tags.setdefault(tag, []).append(via)
    return tags


def _dataset_tags(platform: Platform, node: str) -> list[tuple[str, str]]:
    name, version = parse_ref(node.removeprefix("dataset:"))
    query = select(DatasetVersionRow.column_tags, DatasetVersionRow.residency).where(
        DatasetVersionRow.name == name
    )
    if version is None:
        query = query.order_by(DatasetVersionRow.version.desc()).limit(1)
    else:
        query = query.where(DatasetVersionRow.version == version)
    with platform.read_session() as session:
        row = session.execute(query).one_or_none()
    if row is None:
        return []
    column_tags, residency = json.loads(row[0]), row[1]
    found = [(t, f"{node} column {c}") for c, t in sorted(column_tags.items())]
    if residency:
        found.append((f"resident:{residency}", f"{node} residency"))
    return found


def check_object_residency(
    platform: Platform,
    node: str,
    target_region: str,
    *,
    actor: Actor | None = None,
    project: str | None = None,
) -> ResidencyDecision:
    """:func:`check_residency` for a lineage node (``dataset:N:V``, ``model:N:V``...)."""
    return check_residency(
        platform,
        object_tags(platform, node),
        target_region,
        actor=actor,
        resource=node,
        project=project,
    )


def check_derived_residency(
    platform: Platform,
    sources: Iterable[str],
    target_region: str,
    *,
    own_tags: Mapping[str, list[str]] | None = None,
    actor: Actor | None = None,
    resource: str = "data",
) -> ResidencyDecision:
    """:func:`check_residency` for something derived from lineage ``sources``.

    Used at write time, before the new node's own lineage edges are committed: the
    tags are the object's own plus those of every source and of everything upstream.
    """
    tags: dict[str, list[str]] = {k: list(v) for k, v in (own_tags or {}).items()}
    for source in sources:
        for tag, origins in object_tags(platform, source).items():
            tags.setdefault(tag, []).extend(origins)
    return check_residency(platform, tags, target_region, actor=actor, resource=resource)
