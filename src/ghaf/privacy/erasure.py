"""Right to erasure: a data subject's rows, or a whole dataset, and everything derived.

A subject (``key_column = value``) is erased from every dataset version that holds its
rows: the latest version of each such dataset is written again without them (a new
version, lineage ``erasure`` from the old one), and every version that held them is
crypto-shredded (:mod:`ghaf.privacy.shred`). A version is read part by part (an
appended version, a stream's, is its base's parts and its own): each part holding the
subject's rows is destroyed, and a part belongs to every version that reads it, so
every such version is destroyed with it and listed on the certificate. The subject's
entity rows leave the online store's feature views keyed by that column, and its
predictions leave the prediction log (matched by request id: the values of
``retention.request_id_columns`` in its rows). Lineage lists what was derived and
cannot be cut row by row (models, deployments, datasets without the key column) for
review. A signed certificate (``ghaf erase verify``) records it all; the audit record
carries the certificate's digest.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select

from ghaf.data.base import DatasetVersion, Part, parse_ref
from ghaf.data.store import (
    dataset_parts,
    list_datasets,
    list_versions,
    record_version,
    stage,
    staging_dir,
    version_projects,
)
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.features.base import ViewLayout
from ghaf.features.online import open_online_store
from ghaf.features.registry import get_feature_view, list_definitions
from ghaf.features.sealing import sealed_layout, sealer_for_read
from ghaf.lineage.graph import downstream, link
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.privacy import predlogs
from ghaf.privacy.certificates import (
    FORMAT,
    body_digest,
    sign_certificate,
    subject_reference,
)
from ghaf.privacy.shred import erased_digests, forget_cached, record_erased, shred_artifact
from ghaf.privacy.tables import ErasureCertificateRow
from ghaf.security.identity import Actor
from ghaf.security.rbac import ALL_PROJECTS
from ghaf.serving.predlog import prediction_log_keys
from ghaf.spine import current_operation, current_session, governed

_RECORD_KEYS = ("version", "digest", "unchanged")
"""Details ``record_version`` leaves on the operation; the erasure writes its own."""
_REVIEW_KINDS = ("model:", "deployment:", "run:")


@dataclass
class _Hit:
    """A dataset version holding the subject's rows."""

    version: DatasetVersion
    project: str
    latest: bool
    table: pa.Table
    mask: pa.ChunkedArray | pa.Array
    rows: int
    parts: list[str]
    """The digests of the version's parts that hold the subject's rows."""


def _read(platform: Platform, digest: str) -> pa.Table:
    # Straight from the store: read_dataset would leave a decrypted copy in the cache.
    return pq.read_table(pa.BufferReader(platform.artifacts.read_bytes(digest)))


def _chunks(masks: Sequence[pa.ChunkedArray | pa.Array]) -> pa.ChunkedArray:
    return pa.chunked_array(
        [c for m in masks for c in (m.chunks if isinstance(m, pa.ChunkedArray) else [m])],
        type=pa.bool_(),
    )


def is_erased(version: DatasetVersion, parts: Sequence[Part], erased: Collection[str]) -> bool:
    """Whether ``version`` was destroyed: it, or a part it reads, was erased."""
    return version.digest in erased or any(p.digest in erased for p in parts)


def _equal(column: pa.ChunkedArray | pa.Array, value: Any) -> pa.ChunkedArray | pa.Array | None:
    """Where ``column`` equals ``value`` (a CLI string cast to the column's type); None
    when the value cannot be of that type (no row can match)."""
    try:
        scalar = pa.scalar(value).cast(column.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return pc.fill_null(pc.equal(column, scalar), False)


def _count(mask: pa.ChunkedArray | pa.Array | None) -> int:
    return 0 if mask is None else int(pc.sum(mask).as_py() or 0)


def _scan(
    platform: Platform, key_column: str, value: str, names: Sequence[str], erased: set[str]
) -> list[_Hit]:
    hits: list[_Hit] = []
    for name in names:
        versions = list_versions(platform, name)
        projects = version_projects(platform, name)
        parts = dataset_parts(platform, name)
        # Each part is read once, whichever versions read it (a stream's are shared).
        read: dict[str, tuple[pa.Table, pa.ChunkedArray | pa.Array | None, int]] = {}
        for version in versions:
            own = parts[version.version]
            if is_erased(version, own, erased) or key_column not in version.schema.names:
                continue
            for part in own:
                if part.digest not in read:
                    table = _read(platform, part.digest)
                    mask = _equal(table.column(key_column), value)
                    read[part.digest] = (table, mask, _count(mask))
            held = [p.digest for p in own if read[p.digest][2]]
            if not held:
                continue
            found = [read[p.digest] for p in own]
            if len(found) == 1:
                table, mask, rows = found[0]
            else:
                table = pa.concat_tables([f[0] for f in found])
                mask = _chunks([f[1] for f in found if f[1] is not None])
                rows = sum(f[2] for f in found)
            if mask is None:  # pragma: no cover - a part with rows has a mask
                continue
            latest = version.version == versions[-1].version
            hits.append(_Hit(version, projects[version.version], latest, table, mask, rows, held))
    return hits


@contextlib.contextmanager
def _acting_in(project: str) -> Iterator[None]:
    """Record versions in ``project`` (a home-wide erasure rewrites each dataset in its own)."""
    operation = current_operation()
    saved = operation.project
    operation.project = project
    try:
        yield
    finally:
        operation.project = saved


def _rewrite(platform: Platform, actor: Actor, hit: _Hit, certificate: str) -> DatasetVersion:
    old = hit.version
    kept = hit.table.filter(pc.invert(hit.mask))
    scoped = platform.in_project(hit.project)
    with _acting_in(hit.project), staging_dir(platform) as directory:
        staged = stage(kept, directory, schema=hit.table.schema, where=f"dataset {old.name!r}")
        new = record_version(
            scoped,
            actor,
            old.name,
            staged,
            source=f"erasure:{certificate}",
            inputs=list(old.inputs),
            column_tags=old.column_tags,
            residency=old.residency,
            job="dataset.erasure",
        )
    link(old.node, new.node, "erasure")
    return new


def _subject_ids(
    hits: Sequence[_Hit], key_column: str, value: str, extra: Sequence[str]
) -> set[str]:
    """The request ids the subject's predictions were logged under."""
    ids = {value}
    for hit in hits:
        rows = hit.table.filter(hit.mask)
        for column in (key_column, *extra):
            if column in rows.column_names:
                ids.update(str(v) for v in rows.column(column).to_pylist() if v is not None)
    return ids


def _online_views(
    platform: Platform, key_column: str, value: str, *, apply: bool
) -> tuple[list[dict[str, Any]], list[str], set[str]]:
    """Remove the subject's entity rows from every view keyed by ``key_column``: the
    views touched, the materialized views keyed otherwise (for review), and the names of
    every view keyed by ``key_column``."""
    settings = platform.settings
    views = [d.name for d in list_definitions(platform) if d.kind == "feature_view"]
    keyed: set[str] = set()
    if not views:
        return [], [], keyed
    store = open_online_store(
        settings.resolved_online_store_url,
        region=settings.online_store_region or settings.artifact_region,
    )
    done: list[dict[str, Any]] = []
    others: list[str] = []
    try:
        for name in views:
            view, version = get_feature_view(platform, name)
            if view.join_keys == (key_column,):
                keyed.add(name)
            watermark = store.watermark(name)
            if watermark is None:
                continue  # never materialized here
            if view.join_keys != (key_column,):
                others.append(f"feature_view:{name}:{version}")
                continue
            layout = ViewLayout.of(view)
            if sealer_for_read(platform, store.url, name) is not None:
                layout = sealed_layout(layout)  # rows stay sealed: never opened here
            rows = store.read_all(layout)
            mask = _equal(rows.column(key_column), value)
            count = _count(mask)
            if count == 0 or mask is None:
                continue
            if apply:
                store.write_view(
                    layout, rows.filter(pc.invert(mask)), watermark=watermark, replace=True
                )
            done.append({"view": f"feature_view:{name}:{version}", "rows_removed": count})
    finally:
        store.close()
    return done, others, keyed


def _review(
    platform: Platform,
    nodes: Sequence[str],
    handled: set[str],
    views: Collection[str] = (),
) -> list[dict[str, str]]:
    """What lineage says was derived from ``nodes`` and erasure did not cut (``handled``
    nodes, and the feature views named in ``views``, were)."""
    found: dict[str, str] = {}
    for node in nodes:
        for derived in downstream(platform, node):
            if derived in handled or derived in found:
                continue
            if derived.startswith("feature_view:") and derived.split(":")[1] in views:
                continue
            if derived.startswith(_REVIEW_KINDS):
                found[derived] = f"derived from {node}: review (not destroyed)"
            elif derived.startswith("dataset:") or derived.startswith("feature_view:"):
                found[derived] = f"derived from {node} without its rows' key: review"
    return [{"node": n, "reason": r} for n, r in sorted(found.items())]


def _issue(
    platform: Platform, actor: Actor, certificate_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Sign ``body``, store the certificate and put its digest on the audit record."""
    document = sign_certificate(platform.settings, body)
    digest = body_digest(body)
    session = current_session()
    session.add(
        ErasureCertificateRow(
            id=certificate_id,
            kind=str(body["kind"]),
            issued_at=utcnow(),
            issued_by=actor.name,
            digest=digest,
            document=orjson.dumps(document).decode(),
        )
    )
    session.flush()
    details = current_operation().details
    for key in _RECORD_KEYS:
        details.pop(key, None)
    details.update(
        certificate=certificate_id,
        certificate_sha256=digest,
        destroyed=len(body["destroyed"]),
        rewritten=len(body["rewritten"]),
        review=len(body["review"]),
    )
    return document


def _body(kind: str, certificate_id: str, actor: Actor, **parts: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "id": certificate_id,
        "kind": kind,
        "issued_at": utcnow().isoformat(),
        "issued_by": actor.name,
        "destroyed": [],
        "rewritten": [],
        "online_views": [],
        "prediction_logs": [],
        "review": [],
        "notes": [
            "copies made outside Ghaf (backups of the artifact store's headers, exports) "
            "are not covered: rotate the KEK and destroy its old version to shred those",
        ],
        **parts,
    }


def _destroy(
    platform: Platform, digests: dict[str, list[str]], reason: str
) -> list[dict[str, Any]]:
    """Destroy each digest (after all metadata work); the certificate's entries."""
    entries: list[dict[str, Any]] = []
    for digest, nodes in sorted(digests.items()):
        method = shred_artifact(platform, digest)
        for node in nodes:
            record_erased(digest, node, reason)
        entries.extend({"node": n, "digest": digest, "method": method} for n in sorted(nodes))
    return entries


@governed("erasure.subject", resource="subject:{key_column}", project=ALL_PROJECTS)
def erase_subject(
    platform: Platform,
    actor: Actor,
    key_column: str,
    value: str,
    *,
    datasets: Sequence[str] = (),
    request_id_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """Erase every row where ``key_column`` equals ``value``; returns the signed certificate.

    Args:
        datasets: the datasets to look in (default: every dataset with ``key_column``).
        request_id_columns: further columns whose values are the subject's request ids
            (beside ``retention.request_id_columns``).

    Raises:
        InvalidInputError: an empty key column or value.
        NotFoundError: a named dataset does not exist, or no row of the subject was found.
    """
    if not key_column.strip() or not value.strip():
        raise InvalidInputError(
            "erasure needs a key column and a value",
            hint="e.g. ghaf erase subject --key-column customer_id --value C123",
        )
    names = [parse_ref(d)[0] for d in datasets] or list_datasets(platform)
    known = set(list_datasets(platform))
    for name in names:
        if name not in known:
            raise NotFoundError(f"dataset {name!r} does not exist", hint="ghaf data list")
    certificate_id = secrets.token_hex(16)
    hits = _scan(platform, key_column, value, names, set(erased_digests(platform)))
    id_columns = [*platform.settings.retention.request_id_columns, *request_id_columns]
    ids = _subject_ids(hits, key_column, value, id_columns)
    log_keys = prediction_log_keys(platform)
    logs = [
        d
        for path in predlogs.log_files_of(platform)
        if (d := predlogs.drop_requests(path, ids, apply=False, keys=log_keys)).rows
    ]
    views, keyed_otherwise, keyed = _online_views(platform, key_column, value, apply=False)
    if not hits and not logs and not views:
        raise NotFoundError(
            f"no row where {key_column} = the value given was found",
            hint="check the column and the value (ghaf data show NAME lists the columns)",
        )
    rewritten: list[dict[str, Any]] = []
    for hit in (h for h in hits if h.latest):
        new = _rewrite(platform, actor, hit, certificate_id)
        rewritten.append(
            {
                "from": hit.version.node,
                "to": new.node,
                "digest": new.digest,
                "rows_removed": hit.rows,
                "rows_kept": new.num_rows,
            }
        )
    digests: dict[str, list[str]] = {}
    for hit in hits:  # a part holding the subject's rows goes for every version reading it
        for digest in hit.parts:
            digests.setdefault(digest, []).append(hit.version.node)
    # Versions that were read and hold no row of the subject need nothing either.
    handled: set[str] = {str(r["to"]) for r in rewritten} | {
        v.node
        for name in names
        for v in list_versions(platform, name)
        if key_column in v.schema.names
    }
    body = _body(
        "subject",
        certificate_id,
        actor,
        subject=subject_reference(key_column, value),
        rewritten=rewritten,
        review=_review(platform, sorted(digests_nodes(digests)), handled, keyed),
    )
    # Destruction last: every metadata write above can still roll back before it.
    body["online_views"] = _online_views(platform, key_column, value, apply=True)[0]
    body["prediction_logs"] = [
        {
            "file": predlogs.label(platform, d.path),
            "rows_removed": d.rows,
            "action": "deleted" if d.removed else "rewritten",
        }
        for d in (predlogs.drop_requests(log.path, ids, keys=log_keys) for log in logs)
    ]
    body["destroyed"] = _destroy(platform, digests, f"erasure:{certificate_id}")
    for hit in hits:  # the joined copy dataset_parquet_path keeps of a version of parts
        forget_cached(platform, hit.version.digest)
    body["review"] += [
        {"node": n, "reason": f"online view not keyed by {key_column}: review"}
        for n in keyed_otherwise
        if n not in {r["node"] for r in body["review"]}
    ]
    return _issue(platform, actor, certificate_id, body)


def digests_nodes(digests: dict[str, list[str]]) -> list[str]:
    """Every node of a digest -> nodes map."""
    return [node for nodes in digests.values() for node in nodes]


@governed("erasure.dataset", resource="dataset:{ref}", project=ALL_PROJECTS)
def erase_dataset(platform: Platform, actor: Actor, ref: str) -> dict[str, Any]:
    """Destroy dataset ``ref`` (``NAME``: every version; ``NAME:V``: that one) and every
    dataset version derived from it; returns the signed certificate.

    Raises:
        NotFoundError: no such dataset or version, or it was erased already.
    """
    name, number = parse_ref(ref)
    erased = erased_digests(platform)
    parts = {name: dataset_parts(platform, name)}
    versions = [
        v
        for v in list_versions(platform, name)
        if (number is None or v.version == number)
        and not is_erased(v, parts[name][v.version], erased)
    ]
    if not versions:
        raise NotFoundError(
            f"dataset {ref!r} has no version left to erase",
            hint=f"ghaf data versions {name}",
        )
    certificate_id = secrets.token_hex(16)
    targets = {v.node for v in versions}
    for version in versions:
        targets.update(n for n in downstream(platform, version.node) if n.startswith("dataset:"))
    digests: dict[str, list[str]] = {}
    for node in sorted(targets):
        derived_name, derived_version = parse_ref(node)
        if derived_name not in parts:
            parts[derived_name] = dataset_parts(platform, derived_name)
        for candidate in list_versions(platform, derived_name):
            own = parts[derived_name][candidate.version]
            if candidate.version == derived_version and not is_erased(candidate, own, erased):
                for part in own:
                    digests.setdefault(part.digest, []).append(candidate.node)
    # A version reading a destroyed part (a shared part, or the same bytes) goes too: an
    # appended version's earlier parts are the earlier versions' rows.
    joined: set[str] = set()
    for other in list_datasets(platform):
        other_parts = parts.get(other) or dataset_parts(platform, other)
        for candidate in list_versions(platform, other):
            for part in other_parts[candidate.version]:
                nodes = digests.get(part.digest)
                if nodes is not None and candidate.node not in nodes:
                    nodes.append(candidate.node)
                if nodes is not None:
                    joined.add(candidate.digest)
    handled = set(digests_nodes(digests))
    body = _body(
        "dataset",
        certificate_id,
        actor,
        dataset=ref,
        review=_review(platform, sorted(handled), handled),
    )
    body["destroyed"] = _destroy(platform, digests, f"erasure:{certificate_id}")
    for digest in joined:  # the joined copy dataset_parquet_path keeps of a version of parts
        forget_cached(platform, digest)
    return _issue(platform, actor, certificate_id, body)


def list_certificates(platform: Platform, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest certificates' summaries: id, kind, issued_at, issued_by, digest."""
    with platform.read_session() as session:
        rows = session.execute(
            select(ErasureCertificateRow)
            .order_by(ErasureCertificateRow.issued_at.desc())
            .limit(limit)
        ).scalars()
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "issued_at": r.issued_at.isoformat(),
                "issued_by": r.issued_by,
                "sha256": r.digest,
            }
            for r in rows
        ]


def get_certificate(platform: Platform, certificate_id: str) -> dict[str, Any]:
    """The signed certificate document ``certificate_id``.

    Raises:
        NotFoundError: no such certificate.
    """
    with platform.read_session() as session:
        row = session.get(ErasureCertificateRow, certificate_id)
        if row is None:
            raise NotFoundError(
                f"erasure certificate {certificate_id!r} does not exist",
                hint="ghaf erase list shows the certificates",
            )
        document: dict[str, Any] = orjson.loads(row.document)
        return document
