"""The metadata store as portable JSON lines: every table, read from one snapshot.

Each table is a header line ``{"format", "table", "columns"}`` followed by one JSON array
per row, in the columns' order; the tables follow each other in dependency order. Values
JSON cannot hold exactly are written as strings and read back by the column's type:
datetimes (ISO 8601, microseconds, UTC), bytes (base64) and floats that are not finite
(``"nan"``, ``"inf"``, ``"-inf"``). The same file loads into SQLite or PostgreSQL, so a
backup of one restores into the other.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from ghaf.errors import IntegrityError

ROWS_FORMAT = "ghaf-backup-rows/1"
BATCH = 1000
"""Rows read (``yield_per``) and inserted (one executemany) at a time."""


def _encoder(table: Table) -> Callable[[Any], bytes]:
    kinds = [_kind(column.type) for column in table.columns]

    def encode(row: Any) -> bytes:
        values: list[Any] = []
        for kind, value in zip(kinds, row, strict=True):
            if value is None:
                values.append(None)
            elif kind is datetime:
                values.append(value.isoformat())
            elif kind is bytes:
                values.append(base64.b64encode(value).decode())
            elif kind is float and not math.isfinite(value):
                values.append(repr(float(value)))
            else:
                values.append(value)
        return orjson.dumps(values) + b"\n"

    return encode


def _kind(sql_type: Any) -> type | None:
    if isinstance(sql_type, TypeDecorator):  # e.g. UTCDateTime: its python_type is object
        sql_type = sql_type.impl_instance
    try:
        python_type = sql_type.python_type
    except NotImplementedError:  # pragma: no cover - every Ghaf column type has one
        return None
    return python_type if python_type in (datetime, bytes, float) else None


def dump_table(connection: Connection | Session, table: Table) -> Iterator[bytes]:
    """The lines of ``table``'s file, read in primary-key order through ``connection``
    (whose transaction is the snapshot)."""
    header = {
        "format": ROWS_FORMAT,
        "table": str(table.name),
        "columns": [str(column.key) for column in table.columns],
    }
    yield orjson.dumps(header) + b"\n"
    encode = _encoder(table)
    query = select(*table.columns).order_by(*table.primary_key.columns)
    result = connection.execute(query.execution_options(yield_per=BATCH))
    for row in result:
        yield encode(row)


def count_rows(connection: Connection | Session, table: Table) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _decoder(table: Table, columns: list[str], where: str) -> Callable[[list[Any]], dict[str, Any]]:
    if columns != list(table.columns.keys()):
        raise IntegrityError(
            f"{where} has the columns {columns}, table {table.name} has "
            f"{list(table.columns.keys())}",
            hint="restore with the Ghaf version that made the backup (its schema differs)",
        )
    kinds = [_kind(table.columns[name].type) for name in columns]

    def decode(values: list[Any]) -> dict[str, Any]:
        row = {}
        for name, kind, value in zip(columns, kinds, values, strict=True):
            if value is not None and kind is datetime:
                value = datetime.fromisoformat(value)
            elif value is not None and kind is bytes:
                value = base64.b64decode(value)
            elif isinstance(value, str) and kind is float:
                value = float(value)
            row[name] = value
        return row

    return decode


def load_tables(
    session: Session, tables: Sequence[Table], lines: Iterable[bytes], where: str
) -> dict[str, int]:
    """Insert the rows of a file of table dumps, in ``tables``' order (``where`` names the
    file in errors); returns the rows of each table.

    Raises:
        IntegrityError: the file is malformed, or its tables are not ``tables``.
    """
    expected = iter(tables)
    counts: dict[str, int] = {}
    table: Table | None = None
    decode: Callable[[list[Any]], dict[str, Any]] | None = None
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch and table is not None:
            session.execute(insert(table), batch)
            counts[str(table.name)] += len(batch)
            batch.clear()

    try:
        for line in lines:
            value = orjson.loads(line)
            if isinstance(value, dict):  # the next table's header
                flush()
                table = next(expected, None)
                if (
                    table is None
                    or value.get("format") != ROWS_FORMAT
                    or value.get("table") != table.name
                ):
                    raise ValueError(f"unexpected table {value.get('table')!r}")
                decode = _decoder(table, list(value["columns"]), where)
                counts[str(table.name)] = 0
                continue
            if decode is None:
                raise ValueError("rows before a table header")
            batch.append(decode(value))
            if len(batch) >= BATCH:
                flush()
        flush()
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(
            f"{where} is not a metadata file of this backup format ({ROWS_FORMAT}): {exc}",
            hint="the backup is damaged, or was made by another Ghaf version",
        ) from exc
    missing = [str(t.name) for t in tables if str(t.name) not in counts]
    if missing:
        raise IntegrityError(
            f"{where} holds no rows of the tables {missing[:5]}",
            hint="restore with the Ghaf version that made the backup",
        )
    return counts


def reset_sequences(session: Session, tables: Iterable[Table]) -> None:
    """Move PostgreSQL's serial sequences past the restored ids (SQLite needs nothing:
    its next rowid follows the largest)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        largest = func.max(column)
        sequence = func.pg_get_serial_sequence(str(table.name), str(column.name))
        session.execute(
            select(func.setval(sequence, func.coalesce(largest, 1), largest.is_not(None)))
        )
