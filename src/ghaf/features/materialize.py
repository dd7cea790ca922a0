"""Materialization: latest value per entity into the online store, atomically, with stats."""

# SQL here is built from identifiers validated by check_name and quoted, never from values.
# ruff: noqa: S608

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
from sqlalchemy import select

from ghaf.access.residency import check_residency
from ghaf.errors import InvalidInputError
from ghaf.features.base import OnlineStore, ViewLayout, stored_form
from ghaf.features.definitions import FeatureView
from ghaf.features.offline import ViewRequest, point_in_time_join, quote, source_sql
from ghaf.features.online import open_online_store
from ghaf.features.registry import definition_project, get_feature_view, list_definitions
from ghaf.features.residency import view_residency_tags
from ghaf.features.retrieval import dataset_resolver
from ghaf.features.sealing import sealed_layout, sealer_for_read, sealer_for_write
from ghaf.features.tables import MaterializationRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class MaterializationResult:
    """One view's materialization."""

    view: str
    version: int
    mode: str
    start: datetime | None
    watermark: datetime
    rows: int
    stats: dict[str, dict[str, float | int | None]]
    sealed: bool = False
    """Whether its values were written sealed (a pii view, :mod:`ghaf.features.sealing`)."""


def _us(value: datetime) -> int:
    if value.tzinfo is None:
        raise InvalidInputError("materialization times must be timezone-aware", hint="use UTC")
    return int(value.timestamp() * 1_000_000)


def latest_rows(
    con: duckdb.DuckDBPyConnection,
    src: str,
    view: FeatureView,
    *,
    start_us: int | None,
    until_us: int,
) -> pa.Table:
    """Per entity, the row an entity-frame row at ``until`` would get (no TTL), among
    rows that became available after ``start``; columns: keys, ``__ev``, features."""
    keys = ", ".join(quote(k) for k in view.join_keys)
    ev = f"epoch_us({quote(view.timestamp_field)})"
    cr = (
        ev
        if view.created_timestamp_field is None
        else (f"epoch_us({quote(view.created_timestamp_field)})")
    )
    struct = ", ".join(f"'{f}': {quote(f)}" for f in view.feature_names)
    where = [f"{ev} <= {until_us}", f"{cr} <= {until_us}"]
    if start_us is not None:
        where.append(f"greatest({ev}, {cr}) > {start_us}")
    query = (
        f"SELECT {keys}, __b.* FROM (SELECT {keys}, arg_max({{'__ev': {ev}, {struct}}}, "  # nosec B608
        f"({ev}, {cr}, __rn)) AS __b FROM {src} WHERE {' AND '.join(where)} GROUP BY {keys})"
    )
    return con.sql(query).to_arrow_table()


def feature_stats(
    con: duckdb.DuckDBPyConnection, table: pa.Table, view: FeatureView
) -> dict[str, dict[str, float | int | None]]:
    """Count, nulls, mean, std, min, max and quartiles of each numeric feature."""
    con.register("__stats", table)
    stats: dict[str, dict[str, float | int | None]] = {}
    for f in view.features:
        col = quote(f.name)
        if f.dtype in ("float64", "float32", "int64", "int32", "bool"):
            value = f"{col}::DOUBLE"
            row = con.sql(
                f"SELECT count({col}), count(*) - count({col}), avg({value}), "  # nosec B608
                f"stddev_samp({value}), min({value}), max({value}), "
                f"quantile_cont({value}, [0.05, 0.25, 0.5, 0.75, 0.95]) FROM __stats"
            ).fetchall()[0]
            quantiles = row[6] or [None] * 5
            names = ("p05", "p25", "p50", "p75", "p95")
            stats[f.name] = {
                "count": row[0],
                "nulls": row[1],
                **{
                    k: _finite(v)
                    for k, v in zip(("mean", "std", "min", "max"), row[2:6], strict=True)
                },
                **{k: _finite(v) for k, v in zip(names, quantiles, strict=True)},
            }
        else:
            row = con.sql(
                f"SELECT count({col}), count(*) - count({col}), "  # nosec B608
                f"approx_count_distinct({col}) FROM __stats"
            ).fetchall()[0]
            stats[f.name] = {"count": row[0], "nulls": row[1], "distinct": row[2]}
    con.unregister("__stats")
    return stats


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


@governed("features.materialize", resource="online_store:{platform.default_project}")
def materialize(
    platform: Platform,
    actor: Actor,
    views: Sequence[str] | None = None,
    *,
    until: datetime | None = None,
    full: bool = False,
    store: OnlineStore | None = None,
) -> list[MaterializationResult]:
    """Write the latest value per entity of ``views`` (default: all of the platform's
    project; each must be of it) as of ``until``.

    Incremental by default: only rows that became available after the store's last
    watermark for the view; ``full`` replaces the view's rows. Each view's write is
    atomic in the store; statistics are recorded with the run.
    """
    until = until or datetime.now(UTC)
    until_us = _us(until)
    own_store = store is None
    declared = platform.settings.online_store_region or platform.settings.artifact_region
    # The store refuses to open when it recorded another region than settings declare.
    store = store or open_online_store(platform.settings.resolved_online_store_url, region=declared)
    region = store.region or declared
    project = platform.default_project
    names = (
        list(views)
        if views
        else [
            d.name
            for d in list_definitions(platform, projects=[project])
            if d.kind == "feature_view"
        ]
    )
    results: list[MaterializationResult] = []
    try:
        for name in names:
            view, version = get_feature_view(platform, name)
            if definition_project(platform, "feature_view", name) != project:
                raise InvalidInputError(
                    f"feature view {name!r} is not a view of project {project!r}",
                    hint="materialize a view in its own project",
                )
            tags = view_residency_tags(platform, view, version)
            check_residency(
                platform, tags, region, actor=actor, resource=f"feature_view:{name}:{version}"
            )
            sealer, rewrite = sealer_for_write(
                platform, actor, current_session(), store_url=store.url, view=name, tags=tags
            )
            previous = None if full or rewrite else store.watermark(name)
            if previous is not None and previous >= until:
                raise InvalidInputError(
                    f"feature view {name!r} is already materialized until {previous.isoformat()}",
                    hint="pass a later --until, or --full to rebuild",
                )
            import duckdb  # on use: importing this module must not load DuckDB

            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            src = source_sql(con, view, dataset_resolver(platform))
            start_us = None if previous is None else _us(previous)
            rows = latest_rows(con, src, view, start_us=start_us, until_us=until_us)
            stats = feature_stats(con, rows, view)
            con.close()
            layout = ViewLayout.of(view)
            if sealer is not None:
                layout, rows = sealer.seal_rows(layout, rows)
            written = store.write_view(layout, rows, watermark=until, replace=previous is None)
            mode = "full" if previous is None else "incremental"
            current_session().add(
                MaterializationRow(
                    view=name,
                    view_version=version,
                    store_url=store.url,
                    mode=mode,
                    start=previous,
                    watermark=until,
                    rows=written,
                    stats=orjson.dumps(stats).decode(),
                    created_by=actor.name,
                    created_at=utcnow(),
                )
            )
            results.append(
                MaterializationResult(
                    name, version, mode, previous, until, written, stats, sealed=sealer is not None
                )
            )
    finally:
        if own_store:
            store.close()
    current_operation().details["views"] = [
        f"{r.view}:{r.mode}:{r.rows}" + (":sealed" if r.sealed else "") for r in results
    ]
    return results


def materialization_history(platform: Platform, view: str) -> list[MaterializationResult]:
    """Past materializations of ``view``, newest first, with their statistics."""
    with platform.read_session() as session:
        rows = session.execute(
            select(MaterializationRow)
            .where(MaterializationRow.view == view)
            .order_by(MaterializationRow.id.desc())
        ).scalars()
        return [
            MaterializationResult(
                r.view, r.view_version, r.mode, r.start, r.watermark, r.rows, orjson.loads(r.stats)
            )
            for r in rows
        ]


@dataclass(frozen=True)
class ConsistencyReport:
    """Online values compared with offline point-in-time values at the watermark."""

    view: str
    watermark: datetime | None
    checked: int
    mismatches: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def check_consistency(
    platform: Platform, view_name: str, *, store: OnlineStore | None = None, limit: int = 20
) -> ConsistencyReport:
    """Check that every online row equals the offline PIT answer at the watermark."""
    own_store = store is None
    store = store or open_online_store(platform.settings.resolved_online_store_url)
    try:
        view, _ = get_feature_view(platform, view_name)
        watermark = store.watermark(view_name)
        if watermark is None:
            return ConsistencyReport(view_name, None, 0, [])
        layout = ViewLayout.of(view)
        sealer = sealer_for_read(platform, store.url, view_name)
        if sealer is None:
            online = store.read_all(layout)
        else:
            online = sealer.unseal_table(layout, store.read_all(sealed_layout(layout)))
        import duckdb  # on use: importing this module must not load DuckDB

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        src = source_sql(con, view, dataset_resolver(platform))
        keys = ", ".join(quote(k) for k in view.join_keys)
        frame = con.sql(f"SELECT DISTINCT {keys} FROM {src}").to_arrow_table()  # nosec B608
        ts_type = (
            con.sql(f"SELECT {quote(view.timestamp_field)} FROM {src} LIMIT 0")  # nosec B608
            .to_arrow_table()
            .schema.field(0)
            .type
        )
        stamp = watermark if ts_type.tz is not None else watermark.replace(tzinfo=None)
        frame = frame.append_column("__at", pa.array([stamp] * frame.num_rows, ts_type))
        untimed = FeatureView(
            view.name,
            view.entities,
            view.source,
            view.features,
            view.timestamp_field,
            view.created_timestamp_field,
            None,
        )
        offline = point_in_time_join(
            frame,
            [ViewRequest(untimed, view.feature_names)],
            timestamp_column="__at",
            resolver=dataset_resolver(platform),
        ).read_all()
        con.close()
    finally:
        if own_store:
            store.close()
    return _compare(view, offline, online, watermark, limit)


def _compare(
    view: FeatureView, offline: pa.Table, online: pa.Table, watermark: datetime, limit: int
) -> ConsistencyReport:
    def key_of(table: pa.Table, i: int) -> tuple[str, ...]:
        return tuple(str(table.column(k)[i].as_py()) for k in view.join_keys)

    names = view.feature_names
    online_rows = {
        key_of(online, i): [online.column(n)[i].as_py() for n in names]
        for i in range(online.num_rows)
    }
    # Online stores keep timestamp features as epoch microseconds: compare the offline
    # values in that same stored form, converted exactly as the write path does.
    offline_columns = [stored_form(offline.column(f.name), f.dtype) for f in view.features]
    mismatches: list[dict[str, Any]] = []
    for i in range(offline.num_rows):
        key = key_of(offline, i)
        expected = [column[i].as_py() for column in offline_columns]
        got = online_rows.pop(key, None)
        if got is None and all(v is None for v in expected):
            continue
        if got != expected:
            mismatches.append({"key": key, "offline": expected, "online": got})
    for key, got in online_rows.items():
        mismatches.append({"key": key, "offline": None, "online": got})
    checked = offline.num_rows
    return ConsistencyReport(view.name, watermark, checked, mismatches[:limit])
