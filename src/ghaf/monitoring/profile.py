"""Mergeable data profiles: exact per-column counts plus a uniform row sample (bottom-k).

A profile is what drift checks compare, so the training data is read once. Each row
draws a random 64-bit priority and the profile keeps the ``capacity`` rows with the
smallest priorities: a uniform sample without replacement that stays uniform when two
profiles merge (keep the smallest priorities of the union). Counts, nulls, min, max,
sums and category frequencies are exact and add up under merge. Below ``capacity``
rows the sample holds every row, so the tests on it are the exact tests.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.errors import InvalidInputError

Kind = Literal["numeric", "categorical", "other"]
PRIORITY = "__ghaf_priority"
MAX_CATEGORIES = 1_000
"""Distinct values tracked per categorical column; the rest are counted as OTHER."""
OTHER = "(other)"
MAX_SAMPLE_ROWS = 100_000
MAX_SAMPLE_CELLS = 20_000_000
FORMAT = "ghaf.monitoring.profile/1"


def default_capacity(num_columns: int) -> int:
    """Sample rows: up to 100k, fewer for wide tables so a sample stays near 160 MB."""
    return int(min(MAX_SAMPLE_ROWS, max(10_000, MAX_SAMPLE_CELLS // max(num_columns, 1))))


def kind_of(dtype: pa.DataType) -> Kind:
    """How a column is compared: numeric (KS...), categorical (chi-square...) or not at all."""
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_dictionary(dtype)
    ):
        return "categorical"
    return "other"


@dataclass
class ColumnSummary:
    """Exact, mergeable facts about one column."""

    name: str
    kind: Kind
    dtype: str
    count: int = 0
    nulls: int = 0
    minimum: float | None = None
    maximum: float | None = None
    total: float = 0.0
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    @property
    def mean(self) -> float | None:
        return self.total / self.non_null if self.kind == "numeric" and self.non_null else None

    def merge(self, other: ColumnSummary) -> ColumnSummary:
        """The summary of both windows together."""
        cats = dict(self.categories)
        for key, value in other.categories.items():
            cats[key] = cats.get(key, 0) + value
        return ColumnSummary(
            self.name,
            self.kind,
            self.dtype,
            self.count + other.count,
            self.nulls + other.nulls,
            _pick(min, self.minimum, other.minimum),
            _pick(max, self.maximum, other.maximum),
            self.total + other.total,
            _cap_categories(cats),
        )


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(fn(a, b))


def _cap_categories(cats: dict[str, int]) -> dict[str, int]:
    if len(cats) <= MAX_CATEGORIES:
        return cats
    ranked = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[: MAX_CATEGORIES - 1])
    kept[OTHER] = kept.get(OTHER, 0) + sum(v for _, v in ranked[MAX_CATEGORIES - 1 :])
    return kept


@dataclass
class Profile:
    """A window summarized: column summaries and a uniform sample of up to ``capacity`` rows."""

    num_rows: int
    capacity: int
    columns: dict[str, ColumnSummary]
    sample: pa.Table
    _sorted: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def exact(self) -> bool:
        """True when the sample holds every row (the tests are then the exact tests)."""
        return bool(self.sample.num_rows == self.num_rows)

    def sorted_values(self, name: str) -> np.ndarray:
        """The sample's non-null values of a numeric column, sorted (cached)."""
        if name not in self._sorted:
            column = self.sample.column(name)
            chunks = [float_values(c) for c in column.chunks]
            values = np.concatenate(chunks) if chunks else np.zeros(0)
            values = np.asarray(values, np.float64)
            values = np.sort(values)  # NaN sorts last
            self._sorted[name] = values[: values.size - int(np.isnan(values).sum())]
        return self._sorted[name]

    def merge(self, other: Profile) -> Profile:
        """The profile of both windows together (the union of rows)."""
        names = [n for n in self.columns if n in other.columns]
        for n in names:
            if self.columns[n].kind != other.columns[n].kind:
                raise InvalidInputError(
                    f"column {n!r} is {self.columns[n].dtype} in one profile and "
                    f"{other.columns[n].dtype} in the other",
                    hint="profiles merge only when their columns have the same kind",
                )
        columns = {n: self.columns[n].merge(other.columns[n]) for n in names}
        capacity = min(self.capacity, other.capacity)
        sample = _bottom_k(
            pa.concat_tables(
                [self.sample.select([*names, PRIORITY]), other.sample.select([*names, PRIORITY])]
            ),
            capacity,
        )
        return Profile(self.num_rows + other.num_rows, capacity, columns, sample)

    def to_bytes(self) -> bytes:
        """Arrow IPC: the sample as the table, the summaries as schema metadata (no pickle)."""
        meta = {
            "format": FORMAT,
            "num_rows": self.num_rows,
            "capacity": self.capacity,
            "columns": [asdict(c) for c in self.columns.values()],
        }
        table = self.sample.replace_schema_metadata({"ghaf.profile": json.dumps(meta)})
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Read a profile written by :meth:`to_bytes`."""
        try:
            table = pa.ipc.open_stream(data).read_all()
            meta = json.loads((table.schema.metadata or {})[b"ghaf.profile"])
        except (pa.ArrowInvalid, KeyError, ValueError) as exc:
            raise InvalidInputError(
                "the artifact is not a Ghaf profile",
                hint="pass a profile stored by `ghaf monitor profile`",
            ) from exc
        if meta.get("format") != FORMAT:
            raise InvalidInputError(
                f"unsupported profile format {meta.get('format')!r}", hint=f"expected {FORMAT}"
            )
        columns = {c["name"]: ColumnSummary(**c) for c in meta["columns"]}
        return cls(int(meta["num_rows"]), int(meta["capacity"]), columns, table)


def arrow_array(values: np.ndarray) -> pa.Array:
    """A zero-copy Arrow array over a 1-D NumPy integer array.

    ``pa.array(ndarray)`` first asks pandas whether the object is one of its own, which
    imports pandas (~0.2 s, ~40 MB) on the first call; building from the buffer does not.
    """
    values = np.ascontiguousarray(values)
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, values.size, [None, pa.py_buffer(values)])


def float_values(chunk: pa.Array) -> np.ndarray:
    """A float64 Arrow array as NumPy (nulls as NaN), read from its buffer.

    ``Array.to_numpy`` imports pandas on first use; this does not.
    """
    if chunk.null_count:
        chunk = pc.fill_null(chunk, np.nan)
    data = chunk.buffers()[1]
    if data is None:
        return np.zeros(0)
    return np.frombuffer(data, np.float64, len(chunk) + chunk.offset)[chunk.offset :]


def _bottom_k(table: pa.Table, k: int) -> pa.Table:
    if table.num_rows <= k:
        return table
    priorities = table.column(PRIORITY).to_numpy()
    keep = np.sort(np.argpartition(priorities, k - 1)[:k])
    return table.take(arrow_array(keep))


class ProfileBuilder:
    """Builds a :class:`Profile` from record batches, one at a time, in bounded memory."""

    def __init__(
        self,
        schema: pa.Schema,
        *,
        columns: Sequence[str] | None = None,
        capacity: int | None = None,
        seed: int | None = None,
    ) -> None:
        names = list(columns) if columns is not None else list(schema.names)
        missing = [n for n in names if n not in schema.names]
        if missing:
            raise InvalidInputError(
                f"column(s) {', '.join(map(repr, missing))} not in the data",
                hint=f"the data has: {', '.join(schema.names)}",
            )
        self._summaries = {
            n: ColumnSummary(n, kind_of(schema.field(n).type), str(schema.field(n).type))
            for n in names
        }
        self._names = [n for n in names if self._summaries[n].kind != "other"]
        self.capacity = capacity or default_capacity(len(self._names))
        self._rng = np.random.default_rng(seed)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._threshold: np.uint64 = np.uint64(np.iinfo(np.uint64).max)
        self._rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Add a batch of rows (columns not in the schema given at start are ignored)."""
        n = batch.num_rows
        if n == 0:
            return
        self._rows += n
        for name, summary in self._summaries.items():
            _update_summary(summary, batch.column(name))
        priorities = self._rng.integers(0, np.iinfo(np.int64).max, n, dtype=np.int64).astype(
            np.uint64
        )
        keep = np.flatnonzero(priorities < self._threshold)
        if keep.size == 0:
            return
        # Pick the sampled rows first, then widen: once the sample is full a batch keeps
        # a few rows, and casting every row of every column first was most of the work.
        rows = arrow_array(keep) if keep.size < n else None
        arrays = [
            _sample_array(_rows(batch.column(nm), rows), self._summaries[nm].kind)
            for nm in self._names
        ]
        kept = priorities[keep] if rows is not None else priorities
        part = pa.Table.from_arrays([*arrays, arrow_array(kept)], [*self._names, PRIORITY])
        self._pending.append(part)
        self._pending_rows += part.num_rows
        if self._pending_rows > 2 * self.capacity:
            self._compact()

    def _compact(self) -> None:
        table = _bottom_k(pa.concat_tables(self._pending), self.capacity)
        if table.num_rows >= self.capacity:
            self._threshold = np.uint64(pc.max(table.column(PRIORITY)).as_py())
        self._pending = [table]
        self._pending_rows = table.num_rows

    def finish(self) -> Profile:
        """The profile of everything added so far."""
        if self._pending:
            self._compact()
            sample = self._pending[0].combine_chunks()
        else:
            fields = [
                pa.field(n, pa.float64() if self._summaries[n].kind == "numeric" else pa.string())
                for n in self._names
            ]
            sample = pa.schema([*fields, pa.field(PRIORITY, pa.uint64())]).empty_table()
        return Profile(self._rows, self.capacity, dict(self._summaries), sample)


def _rows(column: pa.Array | pa.ChunkedArray, rows: pa.Array | None) -> Any:
    return column if rows is None else pc.take(column, rows)


def _sample_array(column: pa.Array | pa.ChunkedArray, kind: Kind) -> pa.Array | pa.ChunkedArray:
    if kind == "numeric":
        return pc.cast(column, pa.float64())
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pc.cast(column, pa.string())


def _update_summary(summary: ColumnSummary, column: pa.Array | pa.ChunkedArray) -> None:
    summary.count += len(column)
    if summary.kind == "numeric":
        column = _drop_nan_as_null(column)
        summary.nulls += column.null_count
        if column.null_count == len(column):
            return
        bounds = pc.min_max(column)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo is not None:
            summary.minimum = _pick(min, summary.minimum, float(lo))
            summary.maximum = _pick(max, summary.maximum, float(hi))
            summary.total += float(pc.sum(column, min_count=1).as_py() or 0.0)
    else:
        summary.nulls += column.null_count
    if summary.kind == "categorical":
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        counts = pc.value_counts(pc.cast(column, pa.string()))
        values = counts.field("values").to_pylist()
        freqs = counts.field("counts").to_pylist()
        cats = summary.categories
        for value, freq in zip(values, freqs, strict=True):
            if value is not None:
                cats[value] = cats.get(value, 0) + freq
        summary.categories = _cap_categories(cats)


def _drop_nan_as_null(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """NaN counts as missing, like a null."""
    if not pa.types.is_floating(column.type):
        return column
    nan = pc.is_nan(column)
    if not pc.any(nan).as_py():
        return column
    return pc.if_else(nan, pa.scalar(None, column.type), column)


def build_profile(
    data: pa.Table | Iterable[pa.RecordBatch | pa.Table],
    *,
    columns: Sequence[str] | None = None,
    capacity: int | None = None,
    seed: int | None = None,
    schema: pa.Schema | None = None,
) -> Profile:
    """Profile a table or a stream of record batches (give ``schema`` for a stream)."""
    if isinstance(data, pa.Table):
        builder = ProfileBuilder(data.schema, columns=columns, capacity=capacity, seed=seed)
        for batch in data.to_batches(max_chunksize=1 << 20):
            builder.update(batch)
        return builder.finish()
    iterator = iter(data)
    first: pa.RecordBatch | pa.Table | None = next(iterator, None)
    if first is None and schema is None:
        raise InvalidInputError("the window has no record batches", hint="pass a non-empty table")
    builder = ProfileBuilder(
        schema or first.schema,  # type: ignore[union-attr]
        columns=columns,
        capacity=capacity,
        seed=seed,
    )
    if first is not None:
        builder.update(first)
    for batch in iterator:
        builder.update(batch)
    return builder.finish()
