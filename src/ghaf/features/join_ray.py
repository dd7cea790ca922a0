"""Point-in-time joins on a Ray cluster: the entity frame partitioned by entity hash, each
partition joined in a Ray task by the same DuckDB ASOF join as the local path.

The driver does everything that needs the platform: it resolves every view's source
through the same resolver as the local join (verified, decrypted local files only),
validates the frame and the sources, and reads from each source only the columns the
join needs. It then ships plain Arrow tables to the tasks; a task never opens the store.

Partitioning: entity row ``i`` goes to partition ``hash(keys) % P``, where ``keys`` are
the first view's join keys. A feature row goes to every partition holding an entity row
whose join key equals its own, found by an equality join in DuckDB: so a task sees
exactly the rows its ASOF join could match, under the very equality the join uses (two
keys equal to DuckDB but hashed apart send their rows to both partitions), and feature
rows of entities nobody asked for are not shipped. Each source keeps its ``__rn`` row
number and its packed key range from the whole source, so ties break as they do locally.
Each task returns its rows in the frame's order; the driver puts them back in place.
"""

# SQL here is built from identifiers validated by check_name and quoted, never from values.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa

from ghaf.errors import BackendUnavailableError, InvalidInputError
from ghaf.features.offline import (
    KeyRange,
    SourceResolver,
    ViewRequest,
    build_query,
    prepare_join,
    quote,
    run_join,
    to_arrow_table,
)

if TYPE_CHECKING:
    import duckdb

_ROW = "__ghaf_row"
_PART = "__ghaf_part"


@dataclass(frozen=True)
class RayJoin:
    """A join run on Ray: its result, and where each partition ran."""

    table: pa.Table
    """The joined rows, in the entity frame's order."""
    nodes: list[str]
    """The Ray node id that joined each non-empty partition."""


def _join_partition(
    entity: pa.Table,
    views: list[pa.Table],
    requests: list[ViewRequest],
    entity_columns: list[str],
    timestamp_column: str,
    full_feature_names: bool,
    ranges: list[KeyRange | None],
) -> tuple[str, pa.Table]:
    """A Ray task: the local ASOF join of one partition; returns (node id, rows)."""
    import duckdb
    import ray

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("__entity", entity)
    sources = []
    for i, view in enumerate(views):
        name = f"__part_v{i}"
        con.register(name, view)
        sources.append(quote(name))
    table = run_join(
        con,
        sources,
        requests,
        entity_columns,
        timestamp_column,
        full_feature_names=full_feature_names,
        ranges=ranges,
    ).read_all()
    con.close()
    return ray.get_runtime_context().get_node_id(), table


def _needed(request: ViewRequest) -> list[str]:
    view = request.view
    names = [*view.join_keys, view.timestamp_field]
    if view.created_timestamp_field:
        names.append(view.created_timestamp_field)
    return [*dict.fromkeys([*names, *request.features]), "__rn"]


def _split(table: pa.Table, parts: np.ndarray[Any, Any], count: int) -> list[pa.Table]:
    """``table``'s rows by partition (``parts[i]`` is row ``i``'s), each in table order.

    One stable sort of the partition numbers, then a ``take`` per partition: the table is
    read once, not once per partition. Each part owns compact buffers: a zero-copy slice
    would pickle its whole parent buffer into every task's arguments (ARROW-10739).
    """
    parts = np.asarray(parts, dtype=np.int64)
    order = np.argsort(parts, kind="stable")
    ends = np.cumsum(np.bincount(parts, minlength=count))
    starts = np.concatenate([[0], ends[:-1]])
    return [table.take(pa.array(order[a:b])) for a, b in zip(starts, ends, strict=True)]


def _partition(
    con: duckdb.DuckDBPyConnection,
    entity: pa.Table,
    sources: Sequence[str],
    requests: Sequence[ViewRequest],
    count: int,
) -> tuple[list[pa.Table], list[list[pa.Table]]]:
    """The entity frame's partitions and, for each, every view's rows it may match."""
    hashed = ", ".join(quote(k) for k in requests[0].view.join_keys)
    keys = list(dict.fromkeys(k for r in requests for k in r.view.join_keys))
    con.execute(
        f"CREATE TEMP TABLE __parts AS SELECT {_ROW}, "  # nosec B608
        f"{', '.join(quote(k) for k in keys)}, (hash({hashed}) % {count})::INTEGER AS {_PART} "
        f"FROM __entity"
    )
    parts = con.sql(f"SELECT {_PART} FROM __parts ORDER BY {_ROW}").fetchnumpy()[_PART]  # nosec B608
    entities = _split(entity, parts, count)
    views: list[list[pa.Table]] = [[] for _ in range(count)]
    for src, request in zip(sources, requests, strict=True):
        view_keys = request.view.join_keys
        cols = ", ".join(f"s.{quote(c)}" for c in _needed(request))
        on = " AND ".join(f"s.{quote(k)} = m.{quote(k)}" for k in view_keys)
        distinct = ", ".join(quote(k) for k in view_keys)
        rows = con.sql(
            f"SELECT {cols}, m.{_PART} FROM {src} s JOIN (SELECT DISTINCT {distinct}, "  # nosec B608
            f"{_PART} FROM __parts) m ON {on}"
        ).to_arrow_table()
        where = rows.column(_PART).to_numpy()
        for p, part in enumerate(_split(rows.drop_columns([_PART]), where, count)):
            views[p].append(part)
    return entities, views


def ray_point_in_time_join(
    entity_frame: Any,
    requests: Sequence[ViewRequest],
    address: str | None,
    *,
    timestamp_column: str = "event_ts",
    resolver: SourceResolver | None = None,
    tables: dict[str, pa.Table] | None = None,
    full_feature_names: bool = False,
    partitions: int | None = None,
) -> RayJoin:
    """:func:`ghaf.features.offline.point_in_time_join` with each entity-hash partition
    joined in a Ray task (spread over the nodes) on the cluster at ``address``.

    Args:
        address: the head's ``HOST:PORT`` (or ``auto``); ``None`` starts a local
            loopback node (a driver already connected keeps its cluster).
        partitions: how many; default twice the cluster's CPUs.

    Raises:
        InvalidInputError: naming the column at fault, as the local join does.
        BackendUnavailableError: the cluster cannot be reached or a task failed.
    """
    import duckdb

    from ghaf.pipelines.ray import connect_ray

    if partitions is not None and partitions < 1:
        raise InvalidInputError(f"partitions must be at least 1, not {partitions}")
    requests = list(requests)
    if not requests:
        raise InvalidInputError("no features requested", hint="name at least one feature")
    con = duckdb.connect()
    # Read into Arrow here, so the tasks get the frame's own column types.
    prepared = prepare_join(
        con, to_arrow_table(entity_frame), requests, timestamp_column, resolver, tables
    )
    # An Arrow frame is registered as Arrow, numbered: never None here.
    entity = cast(pa.Table, prepared.entity)
    columns = list(prepared.schema.names)
    # Refuse a bad request (a column named twice) here rather than in every task.
    build_query(
        prepared.sources,
        requests,
        [*columns, _ROW],
        timestamp_column,
        full_feature_names=full_feature_names,
        ranges=prepared.ranges,
    )
    ray = connect_ray(address)
    count = partitions or max(2 * int(ray.cluster_resources().get("CPU", 1)), 1)
    entities, views = _partition(con, entity, prepared.sources, requests, count)
    con.close()
    task = ray.remote(max_retries=1)(_join_partition).options(scheduling_strategy="SPREAD")
    live = [p for p in range(count) if entities[p].num_rows] or [0]
    handles = [
        task.remote(
            entities[p],
            views[p],
            requests,
            columns,
            timestamp_column,
            full_feature_names,
            prepared.ranges,
        )
        for p in live
    ]
    try:
        results: list[tuple[str, pa.Table]] = ray.get(handles)
    except ray.exceptions.RayError as exc:
        raise BackendUnavailableError(f"a Ray join task failed: {exc}") from exc
    joined = pa.concat_tables([table for _, table in results])
    rows = np.concatenate([entities[p].column(_ROW).to_numpy() for p in live])
    table = joined.take(pa.array(np.argsort(rows, kind="stable")))
    return RayJoin(table, [node for node, _ in results])
