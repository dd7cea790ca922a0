"""Column statistics from a Parquet file's footer: exact facts that save reading the data.

Parquet writers record, per row group and column, the number of nulls and the
minimum and maximum value. Summed and combined over row groups these are exact
for the whole file, so a contract can answer some checks without a scan: a
not-null check is the null count; an integer range or allowed-values check holds
when the column's bounds lie inside it; an integer key's bounds size the bitmap
that counts its distinct values. A string column whose every row group is
dictionary-encoded (small enough that it cannot be mostly plain-encoded values) has
few distinct values: checks on it run once per distinct value. Floating-point
bounds are not used: writers leave NaN out of them, while SQL comparisons count NaN
as the largest value.

Only flat schemas are read (a nested column has several leaves per field); a
column is left out when any non-empty row group lacks its statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

_INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True)
class ColumnStats:
    """What the footer says about one column over the whole file."""

    type: pa.DataType
    null_count: int | None
    """Exact number of nulls, or ``None`` when some row group did not record it."""
    min: int | None
    max: int | None
    """Exact bounds of an integer or boolean column (``bool`` as 0/1), else ``None``."""
    dictionary: bool = False
    """A string column dictionary-encoded throughout: few distinct values (a hint only)."""


@dataclass(frozen=True)
class FileStats:
    num_rows: int
    columns: dict[str, ColumnStats]


def _bounded(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_boolean(kind))


def _is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _dictionary_encoded(chunk: pq.ColumnChunkMetaData) -> bool:
    """A dictionary page, and under 3 bytes a value (past 1 KiB of headers): a plain-encoded
    string takes at least 4 (its length), so the data cannot have fallen back to plain."""
    size = chunk.total_uncompressed_size
    return bool(chunk.has_dictionary_page and size < 3 * chunk.num_values + 1024)


def read_stats(path: Path) -> FileStats:
    """The row count and per-column statistics of the Parquet file at ``path``."""
    file = pq.ParquetFile(path)
    meta = file.metadata
    schema = file.schema_arrow
    names = schema.names
    nested = any(pa.types.is_nested(f.type) for f in schema)
    if meta.num_columns != len(schema) or nested or len(set(names)) != len(names):
        return FileStats(meta.num_rows, {})
    nulls: list[int | None] = [0] * len(schema)
    lows: list[int | None] = [None] * len(schema)
    highs: list[int | None] = [None] * len(schema)
    usable = [_bounded(f.type) for f in schema]
    dictionary = [_is_string(f.type) for f in schema]
    for group_index in range(meta.num_row_groups):
        group = meta.row_group(group_index)
        if group.num_rows == 0:
            continue
        for index in range(len(schema)):
            chunk = group.column(index)
            if dictionary[index] and not _dictionary_encoded(chunk):
                dictionary[index] = False
            stats = chunk.statistics
            count = nulls[index]
            if stats is None or not stats.has_null_count or count is None:
                nulls[index] = None
            else:
                nulls[index] = count + stats.null_count
            if not usable[index]:
                continue
            if stats is None or not stats.has_min_max:
                # An all-null row group has no bounds and needs none.
                if (
                    stats is not None
                    and stats.has_null_count
                    and stats.null_count == group.num_rows
                ):
                    continue
                usable[index] = False
                continue
            group_low, group_high = int(stats.min), int(stats.max)
            current_low, current_high = lows[index], highs[index]
            lows[index] = group_low if current_low is None else min(group_low, current_low)
            highs[index] = group_high if current_high is None else max(group_high, current_high)
    columns = {}
    for index, field in enumerate(schema):
        low: int | None = lows[index]
        high: int | None = highs[index]
        if (
            not usable[index]
            or low is None
            or high is None
            or not _INT64[0] <= low <= high <= _INT64[1]
        ):
            low = high = None
        columns[field.name] = ColumnStats(field.type, nulls[index], low, high, dictionary[index])
    return FileStats(meta.num_rows, columns)
