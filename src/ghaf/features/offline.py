"""Offline retrieval: point-in-time correct joins as DuckDB ASOF joins, streamed as Arrow.

For each entity row at time ``t`` and each view, the answer is the feature row with the
greatest ``(event_ts, created_ts, source row number)`` among rows with ``event_ts <= t``
and ``created_ts <= t``; its features are null when ``event_ts < t - ttl`` or when no
row qualifies. Entity rows are never dropped and come back in their input order.
"""

# SQL here is built from identifiers validated by check_name and quoted, never from values.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.features.definitions import FeatureView, Transform

if TYPE_CHECKING:
    import duckdb

SourceResolver = Callable[[str], str]
"""Turns a ``dataset:NAME[:V]`` ref into a local Parquet path."""

_MAX_U64 = 18446744073709551615
# A multiplication, not ``<< 64``: DuckDB refuses to shift the negative epochs of times
# before 1970.
_SHIFT_64 = "18446744073709551616::HUGEINT"
_ROW = "__ghaf_row"


@dataclass(frozen=True)
class ViewRequest:
    """Features wanted from one view."""

    view: FeatureView
    features: tuple[str, ...]


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_sql(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    resolver: SourceResolver | None,
    tables: dict[str, pa.Table] | None = None,
) -> str:
    """A FROM-clause expression for ``view``'s source with a ``__rn`` row-number column."""
    source = view.source
    if isinstance(source, Transform):
        for alias, ref in source.inputs.items():
            inner = _plain_source(ref, resolver, tables, con, f"__in_{view.name}_{alias}")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(alias)} AS SELECT * FROM {inner}")  # nosec B608
        return f"(SELECT *, row_number() OVER () AS __rn FROM ({source.sql}))"  # nosec B608
    inner = _plain_source(source, resolver, tables, con, f"__src_{view.name}")
    if inner.startswith("read_parquet("):
        rn = inner[:-1] + ", file_row_number=true)"
        return f"(SELECT * EXCLUDE (file_row_number), file_row_number AS __rn FROM {rn})"  # nosec B608
    return f"(SELECT *, row_number() OVER () AS __rn FROM {inner})"  # nosec B608


def _plain_source(
    ref: str,
    resolver: SourceResolver | None,
    tables: dict[str, pa.Table] | None,
    con: duckdb.DuckDBPyConnection,
    register_as: str,
) -> str:
    if tables is not None and ref in tables:
        con.register(register_as, tables[ref])
        return quote(register_as)
    if ref.startswith("dataset:"):
        if resolver is None:
            raise NotFoundError(
                f"source {ref!r} needs the data concern to resolve it",
                hint="install ghaf with its data module, or use a Parquet path",
            )
        path = resolver(ref.removeprefix("dataset:"))
    else:
        path = ref.removeprefix("file://")
        if not any(ch in path for ch in "*?[") and not Path(path).exists():
            raise NotFoundError(f"feature source {path} does not exist", hint="check the path")
    return f"read_parquet({_literal(path)})"


def to_arrow_table(frame: Any, what: str = "entity frame") -> pa.Table:
    """Accept a pyarrow Table, RecordBatchReader, pandas DataFrame, dict or Parquet path."""
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatchReader):
        return frame.read_all()
    if isinstance(frame, str | Path):
        return pq.read_table(frame)
    if isinstance(frame, dict):
        return pa.table(frame)
    if hasattr(frame, "__arrow_c_stream__") or type(frame).__module__.startswith("pandas"):
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise InvalidInputError(
        f"{what} of type {type(frame).__name__} is not supported",
        hint="pass a pyarrow Table, a pandas DataFrame or a Parquet path",
    )


def _is_time(t: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(t))


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    return str(t)


def validate_entity_frame(
    schema: pa.Schema, timestamp_column: str, requests: Sequence[ViewRequest]
) -> None:
    """Raise :class:`InvalidInputError` naming the column when a frame with ``schema``
    cannot be joined."""
    columns = schema.names
    if timestamp_column not in columns:
        raise InvalidInputError(
            f"entity frame has no timestamp column {timestamp_column!r}",
            hint=f"add it or pass timestamp_column=...; columns are {', '.join(columns)}",
        )
    ts_type = schema.field(timestamp_column).type
    if not _is_time(ts_type):
        raise InvalidInputError(
            f"entity frame column {timestamp_column!r} has type {ts_type}, not a timestamp",
            hint="convert it to a timezone-aware timestamp",
        )
    for request in requests:
        for key in request.view.join_keys:
            if key not in columns:
                raise InvalidInputError(
                    f"entity frame has no join key column {key!r} (feature view "
                    f"{request.view.name!r})",
                    hint=f"add the {key!r} column; columns are {', '.join(columns)}",
                )


def _null_timestamps(count: int, timestamp_column: str) -> None:
    if count:
        raise InvalidInputError(
            f"entity frame column {timestamp_column!r} has null timestamps", hint="drop them"
        )


def _validate_source(
    con: duckdb.DuckDBPyConnection, src: str, request: ViewRequest, entity: pa.Schema, ts: str
) -> None:
    view = request.view
    schema = con.sql(f"SELECT * FROM {src} LIMIT 0").to_arrow_table().schema  # nosec B608
    needed = [*view.join_keys, view.timestamp_field, *request.features]
    if view.created_timestamp_field:
        needed.append(view.created_timestamp_field)
    for name in needed:
        if name not in schema.names:
            raise InvalidInputError(
                f"source of feature view {view.name!r} has no column {name!r}",
                hint=f"its columns are {', '.join(n for n in schema.names if n != '__rn')}",
            )
    for key in view.join_keys:
        theirs, ours = _kind(schema.field(key).type), _kind(entity.field(key).type)
        if theirs != ours:
            raise InvalidInputError(
                f"join key column {key!r} is {ours} in the entity frame but {theirs} in "
                f"feature view {view.name!r}",
                hint=f"cast the entity frame's {key!r} column to {theirs}",
            )
    time_columns = [view.timestamp_field]
    if view.created_timestamp_field:
        time_columns.append(view.created_timestamp_field)
    entity_tz = entity.field(ts).type.tz is not None
    for column in time_columns:
        col_type = schema.field(column).type
        if not _is_time(col_type):
            raise InvalidInputError(
                f"column {column!r} of feature view {view.name!r} has type {col_type}, "
                "not a timestamp",
                hint="make it a timestamp in the source",
            )
        if (col_type.tz is not None) != entity_tz:
            raise InvalidInputError(
                f"timestamp column {ts!r} of the entity frame is timezone-"
                f"{'aware' if entity_tz else 'naive'} but {column!r} of feature view "
                f"{view.name!r} is {'naive' if entity_tz else 'aware'}",
                hint="make both timezone-aware (UTC)",
            )


@dataclass(frozen=True)
class KeyRange:
    """A view source's event times and row numbers, small enough for a BIGINT ASOF key."""

    offset: int
    """One µs before the earliest event time."""
    bits: int
    """Bits taken by the row number (the tie-break among equal event times)."""


def key_range(con: duckdb.DuckDBPyConnection, src: str, view: FeatureView) -> KeyRange | None:
    """A :class:`KeyRange` for ``view``'s source when ``(event time, row)`` packs into a
    BIGINT; ``None`` when it does not (or the view has a created timestamp or a transform).

    The ASOF key must order rows by event time, then by source row (the later of two rows
    with equal times wins). Packed as a BIGINT it is ``(ev - offset) << bits | row``; only
    when that cannot fit does the join fall back to a HUGEINT key, which costs DuckDB more
    memory and time to sort.
    """
    if view.created_timestamp_field is not None or isinstance(view.source, Transform):
        return None
    ev = f"epoch_us({quote(view.timestamp_field)})"
    [(low, high, top)] = con.sql(f"SELECT min({ev}), max({ev}), max(__rn) FROM {src}").fetchall()  # nosec B608
    if low is None or top is None:
        return None
    bits = max(int(top).bit_length(), 1)
    offset = int(low) - 1
    if (int(high) - offset + 1) >= 1 << (63 - bits):
        return None
    return KeyRange(offset, bits)


def _entity_key(us: str, packed: KeyRange | None) -> str:
    """The entity row's ASOF key: after every feature row at the same instant."""
    if packed is None:
        return f"({us})::HUGEINT * {_SHIFT_64} + {_MAX_U64}::HUGEINT"
    # Clamped into the packed range: before it nothing matches, after it everything does.
    high = (1 << (63 - packed.bits)) - 2 + packed.offset
    clamped = f"least(greatest({us}, {packed.offset}), {high}) - {packed.offset}"
    return f"(({clamped}) << {packed.bits}) + {(1 << packed.bits) - 1}"


def build_query(
    sources: Sequence[str],
    requests: Sequence[ViewRequest],
    entity_columns: Sequence[str],
    timestamp_column: str,
    *,
    full_feature_names: bool,
    ranges: Sequence[KeyRange | None] | None = None,
) -> str:
    """The one SQL statement joining every view onto the entity frame ``__entity``."""
    ts = quote(timestamp_column)
    packing = list(ranges) if ranges is not None else [None] * len(requests)
    us = f"epoch_us({ts})"
    entity_keys = ", ".join(f"{_entity_key(us, p)} AS __k{i}" for i, p in enumerate(packing))
    ctes = [f"e AS (SELECT *, {us} AS __us, {entity_keys} FROM __entity)"]  # nosec B608
    selects = [f"e.{quote(c)}" for c in entity_columns if c != _ROW]
    joins: list[str] = []
    seen = set(entity_columns)
    for i, (src, request) in enumerate(zip(sources, requests, strict=True)):
        view = request.view
        keys = ", ".join(quote(k) for k in view.join_keys)
        feats = ", ".join(quote(f) for f in request.features)
        ev = quote(view.timestamp_field)
        packed = packing[i]
        if packed is not None:
            ctes.append(
                f"f{i} AS (SELECT {keys}, {feats}, epoch_us({ev}) AS __ev, "  # nosec B608
                f"((epoch_us({ev}) - {packed.offset}) << {packed.bits}) + __rn AS __k FROM {src})"
            )
        elif view.created_timestamp_field is None:
            ctes.append(
                f"f{i} AS (SELECT {keys}, {feats}, epoch_us({ev}) AS __ev, "  # nosec B608
                f"epoch_us({ev})::HUGEINT * {_SHIFT_64} + __rn::HUGEINT AS __k FROM {src})"
            )
        else:
            cr = quote(view.created_timestamp_field)
            struct = ", ".join(f"{_literal(f)}: {quote(f)}" for f in request.features)
            avail = f"greatest(epoch_us({ev}), epoch_us({cr}))"
            ctes.append(
                f"b{i} AS (SELECT {keys}, ({avail})::HUGEINT * {_SHIFT_64} AS __k, arg_max("  # nosec B608
                f"{{'__ev': epoch_us({ev}), {struct}}}, (epoch_us({ev}), epoch_us({cr}), __rn)) "
                f"OVER (PARTITION BY {keys} ORDER BY {avail} RANGE BETWEEN UNBOUNDED PRECEDING "
                f"AND CURRENT ROW) AS __best FROM {src} "
                f"WHERE {ev} IS NOT NULL AND {cr} IS NOT NULL)"
            )
            ctes.append(f"f{i} AS (SELECT {keys}, __k, __best.* FROM b{i})")  # nosec B608
        on = " AND ".join(f"e.{quote(k)} = f{i}.{quote(k)}" for k in view.join_keys)
        joins.append(f"ASOF LEFT JOIN f{i} ON {on} AND e.__k{i} >= f{i}.__k")
        ttl = None if view.ttl is None else int(view.ttl.total_seconds() * 1_000_000)
        for feature in request.features:
            name = f"{view.name}__{feature}" if full_feature_names else feature
            if name in seen:
                raise InvalidInputError(
                    f"output column {name!r} appears twice",
                    hint="pass full_feature_names=True to name columns view__feature",
                )
            seen.add(name)
            value = f"f{i}.{quote(feature)}"
            if ttl is not None:
                value = f"CASE WHEN f{i}.__ev >= e.__us - {ttl} THEN {value} END"
            selects.append(f"{value} AS {quote(name)}")
    return (
        f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM e {' '.join(joins)} "  # nosec B608
        f"ORDER BY e.{_ROW}"
    )


def _register_entity(
    con: duckdb.DuckDBPyConnection,
    entity_frame: Any,
    timestamp_column: str,
    requests: Sequence[ViewRequest],
) -> tuple[pa.Table | None, pa.Schema]:
    """Make the validated frame DuckDB's ``__entity``, numbered by ``__ghaf_row``.

    A Parquet path is scanned by DuckDB itself rather than read into Arrow first: the
    pyarrow read cost the W2 join ~70 MiB of peak memory and time for nothing.
    """
    if isinstance(entity_frame, str | Path) and Path(entity_frame).is_file():
        path = str(entity_frame)
        schema = pq.read_schema(path)
        if "file_row_number" not in schema.names:
            validate_entity_frame(schema, timestamp_column, requests)
            con.execute(
                "CREATE OR REPLACE TEMP VIEW __entity AS SELECT * EXCLUDE (file_row_number), "  # nosec B608
                f"file_row_number AS {_ROW} FROM read_parquet({_literal(path)}, "
                "file_row_number=true)"
            )
            ts = quote(timestamp_column)
            [(nulls,)] = con.sql(f"SELECT count(*) - count({ts}) FROM __entity").fetchall()  # nosec B608
            _null_timestamps(int(nulls), timestamp_column)
            return None, schema
    entity = to_arrow_table(entity_frame)
    validate_entity_frame(entity.schema, timestamp_column, requests)
    _null_timestamps(entity.column(timestamp_column).null_count, timestamp_column)
    numbered = entity.append_column(_ROW, pa.array(np.arange(entity.num_rows, dtype=np.int64)))
    con.register("__entity", numbered)
    return numbered, entity.schema


@dataclass(frozen=True)
class PreparedJoin:
    """The validated inputs of a join, registered on a DuckDB connection."""

    entity: pa.Table | None
    """The entity frame numbered by ``__ghaf_row`` (``None`` when DuckDB scans a file)."""
    schema: pa.Schema
    """The entity frame's own columns."""
    sources: list[str]
    """Each view's FROM expression, with a ``__rn`` row-number column."""
    ranges: list[KeyRange | None]
    """Each view's packed ASOF key range, taken over its whole source."""


def prepare_join(
    con: duckdb.DuckDBPyConnection,
    entity_frame: Any,
    requests: Sequence[ViewRequest],
    timestamp_column: str,
    resolver: SourceResolver | None,
    tables: dict[str, pa.Table] | None,
) -> PreparedJoin:
    """Register the entity frame as ``__entity`` on ``con``, resolve and validate every
    view's source (through ``resolver``: verified, decrypted local files only).

    Raises:
        InvalidInputError: naming the column at fault.
    """
    con.execute("SET TimeZone = 'UTC'")
    entity, schema = _register_entity(con, entity_frame, timestamp_column, requests)
    sources = [source_sql(con, r.view, resolver, tables) for r in requests]
    for src, request in zip(sources, requests, strict=True):
        _validate_source(con, src, request, schema, timestamp_column)
    ranges = [key_range(con, s, r.view) for s, r in zip(sources, requests, strict=True)]
    return PreparedJoin(entity, schema, sources, ranges)


def run_join(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[str],
    requests: Sequence[ViewRequest],
    entity_columns: Sequence[str],
    timestamp_column: str,
    *,
    full_feature_names: bool,
    ranges: Sequence[KeyRange | None],
    batch_size: int = 65_536,
) -> pa.RecordBatchReader:
    """Run the ASOF join of ``sources`` (FROM expressions with a ``__rn`` column) onto
    ``__entity`` (numbered by ``__ghaf_row``) on ``con``, in ``__ghaf_row`` order.

    The one join both paths run: :func:`point_in_time_join` on the whole frame, and
    :mod:`ghaf.features.join_ray` on each partition in a Ray task.
    """
    query = build_query(
        sources,
        requests,
        [*entity_columns, _ROW],
        timestamp_column,
        full_feature_names=full_feature_names,
        ranges=ranges,
    )
    return con.sql(query).to_arrow_reader(batch_size)


def point_in_time_join(
    entity_frame: Any,
    requests: Sequence[ViewRequest],
    *,
    timestamp_column: str = "event_ts",
    resolver: SourceResolver | None = None,
    tables: dict[str, pa.Table] | None = None,
    full_feature_names: bool = False,
    batch_size: int = 65_536,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> pa.RecordBatchReader:
    """Join features onto ``entity_frame`` point-in-time correctly, in one DuckDB plan.

    Args:
        entity_frame: rows to enrich: the join keys and ``timestamp_column``, plus any
            columns to carry through (labels).
        requests: the features wanted from each view.
        resolver: resolves ``dataset:`` source refs to local Parquet paths.
        tables: in-memory sources by ref (tests, previews).

    Returns:
        A reader of Arrow batches, in the entity frame's row order.

    Raises:
        InvalidInputError: naming the column at fault.
    """
    import duckdb  # on use: importing this module must not load DuckDB

    con = connection or duckdb.connect()
    prepared = prepare_join(con, entity_frame, requests, timestamp_column, resolver, tables)
    entity = prepared.entity
    reader = run_join(
        con,
        prepared.sources,
        requests,
        prepared.schema.names,
        timestamp_column,
        full_feature_names=full_feature_names,
        ranges=prepared.ranges,
        batch_size=batch_size,
    )

    def batches() -> Iterator[pa.RecordBatch]:
        # Keeps the connection and the registered frame alive while the caller reads.
        _keep = (con, entity)
        yield from reader
        del _keep

    return pa.RecordBatchReader.from_batches(reader.schema, batches())
