"""Residency of derived objects: their tags are those of every dataset upstream of them.

Derived artifacts (features, training sets, models, scores) inherit the classification
and residency tags of every dataset upstream of them in the lineage graph; each write
of one calls :func:`check_derived_residency` (or :func:`check_object_residency`) with
the target region, before any byte is stored.

Every node kind is read, none skipped: a dataset node carries its column tags and
residency; ``transform``, ``run``, ``model`` and ``deployment`` nodes carry no tags of
their own and inherit those of everything upstream of them; a ``feature_view`` node's
own classification is read by :mod:`ghaf.features.residency` (the features concern
owns it), which adds it to these. A dataset node not in this home is tagged
``unknown``, never read as untagged. A raw file has the tags of the dataset version
whose bytes it holds, and those Ghaf wrote into it when it exported it
(:func:`file_tags`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select, tuple_

from ghaf.access.residency import RESIDENCY_ACTION, check_residency
from ghaf.data.base import parse_ref
from ghaf.data.tables import DatasetPartRow, DatasetVersionRow
from ghaf.lineage import upstream
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.security.residency import ResidencyDecision

TAGS_METADATA_KEY = b"ghaf:tags"
"""Parquet key-value metadata where Ghaf writes the tags of data it exports to a file."""

UNKNOWN_TAG = "unknown"
"""The tag of data Ghaf knows nothing of (a dataset node not in this home); no rule by
default: ``security.residency = {unknown = ["ae-*"], ...}`` keeps it in, say, the UAE."""

NO_OWN_TAGS = ("transform", "run", "model", "deployment")
"""Node kinds that carry no tags of their own: theirs are those of their upstream."""

Tags = dict[str, list[str]]
"""Tag -> where it came from (one line per origin)."""


def object_tags(platform: Platform, node: str) -> Tags:
    """Tags of a lineage node and of every dataset upstream of it, with their origin.

    A dataset version contributes its column classifications and ``resident:R`` for
    its residency ``R``.

    A dataset version not in this home contributes :data:`UNKNOWN_TAG`.

    Raises:
        InvalidInputError: ``node`` is not a node id of a known kind.
    """
    nodes = [node, *upstream(platform, node)]
    known = _datasets_tags(platform, [n for n in nodes if n.startswith("dataset:")])
    tags: Tags = {}
    for current in nodes:
        if not current.startswith("dataset:"):
            continue
        found = known.get(current)
        if found is None:  # visible, and a policy may give "unknown" a rule (fail closed)
            found = [(UNKNOWN_TAG, f"{current} is not in this home: its tags are unknown")]
        for tag, origin in found:
            via = origin if current == node else f"{origin}, upstream of {node}"
            tags.setdefault(tag, []).append(via)
    return tags


_PAIRS_PER_QUERY = 400


def _datasets_tags(platform: Platform, nodes: list[str]) -> dict[str, list[tuple[str, str]] | None]:
    """:func:`_dataset_tags` of many dataset nodes in a few queries (a stream's versions
    are each other's upstream: one query per node made every append cost its history)."""
    found: dict[str, list[tuple[str, str]] | None] = {}
    pairs: dict[tuple[str, int], str] = {}
    for node in nodes:
        name, version = parse_ref(node.removeprefix("dataset:"))
        if version is None:
            found[node] = _dataset_tags(platform, node)
        else:
            pairs[(name, version)] = node
    keys = list(pairs)
    with platform.read_session() as session:
        for start in range(0, len(keys), _PAIRS_PER_QUERY):
            rows = session.execute(
                select(
                    DatasetVersionRow.name,
                    DatasetVersionRow.version,
                    DatasetVersionRow.column_tags,
                    DatasetVersionRow.residency,
                ).where(
                    tuple_(DatasetVersionRow.name, DatasetVersionRow.version).in_(
                        keys[start : start + _PAIRS_PER_QUERY]
                    )
                )
            ).all()
            for name, version, column_tags, residency in rows:
                node = pairs[(name, version)]
                found[node] = _row_tags(node, json.loads(column_tags), residency)
    return found


def _dataset_tags(platform: Platform, node: str) -> list[tuple[str, str]] | None:
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
        return None
    return _row_tags(node, json.loads(row[0]), row[1])


def _row_tags(
    node: str, column_tags: Mapping[str, str], residency: str | None
) -> list[tuple[str, str]]:
    found = [(t, f"{node} column {c}") for c, t in sorted(column_tags.items())]
    if residency:
        found.append((f"resident:{residency}", f"{node} residency"))
    return found


def merge_tags(*sets: Mapping[str, list[str]]) -> Tags:
    """One tag map from several, every origin kept."""
    merged: Tags = {}
    for tags in sets:
        for tag, origins in tags.items():
            merged.setdefault(tag, []).extend(origins)
    return merged


def file_tags(platform: Platform, path: Path) -> Tags:
    """What a raw file is known to hold: the tags of the dataset version with the same
    bytes (a cached or copied dataset), and those Ghaf wrote into a Parquet file it
    exported. Nothing known: no tags (the caller decides what an unclassified file is).
    """
    stat = path.stat()
    digest = _digest(str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with platform.read_session() as session:
        rows = list(
            session.execute(
                select(DatasetVersionRow.name, DatasetVersionRow.version).where(
                    DatasetVersionRow.digest == digest
                )
            ).all()
        )
        # A part of an appended version (a stream's micro-batch) carries its version's tags.
        rows += session.execute(
            select(DatasetPartRow.name, DatasetPartRow.version).where(
                DatasetPartRow.digest == digest
            )
        ).all()
    tags: Tags = {}
    for name, version in rows:
        node = f"dataset:{name}:{version}"
        for tag, origins in object_tags(platform, node).items():
            tags.setdefault(tag, []).extend(f"{path} holds the bytes of {o}" for o in origins)
    for tag, origins in _exported_tags(path).items():
        tags.setdefault(tag, []).extend(f"{path}: {o}" for o in origins)
    return tags


@functools.lru_cache(maxsize=256)
def _digest(path: str, inode: int, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, hashed once per version of it (the stat is part of the key)."""
    del inode, size, mtime_ns
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _exported_tags(path: Path) -> Tags:
    if path.suffix.lower() not in (".parquet", ".pq"):
        return {}
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):  # not a readable Parquet file: its reader will say so
        return {}
    raw = metadata.get(TAGS_METADATA_KEY)
    if raw is None:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        return {UNKNOWN_TAG: ["Ghaf's tag metadata is unreadable"]}
    if not isinstance(loaded, dict):
        return {UNKNOWN_TAG: ["Ghaf's tag metadata is unreadable"]}
    return {str(tag): ["tagged by Ghaf when it was written"] for tag in loaded}


def tags_metadata(tags: Mapping[str, list[str]]) -> dict[bytes, bytes]:
    """Parquet key-value metadata carrying ``tags`` (what :func:`file_tags` reads back)."""
    return {TAGS_METADATA_KEY: json.dumps(dict(sorted(tags.items()))).encode()}


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
    action: str = RESIDENCY_ACTION,
) -> ResidencyDecision:
    """:func:`check_residency` for something derived from lineage ``sources``.

    Used at write time, before the new node's own lineage edges are committed: the
    tags are the object's own plus those of every source and of everything upstream.
    ``action`` names the refused operation in the audit record when the check runs
    ahead of it (outside a governed operation).
    """
    tags = merge_tags(own_tags or {}, *(object_tags(platform, s) for s in sources))
    return check_residency(
        platform, tags, target_region, actor=actor, resource=resource, action=action
    )
