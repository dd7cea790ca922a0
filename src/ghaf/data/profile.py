"""Column profiles built while a dataset streams through, one record batch at a time.

Everything here is mergeable per batch, so the profile costs no second pass:
counts and nulls; min/max; mean and standard deviation (Chan's parallel update);
quantiles from a uniform row sample (priority sampling, exact below the sample
size); a distinct-count estimate from a K-minimum-values sketch over DuckDB's
64-bit hashes (exact below K); top values for low-cardinality columns.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLE_ROWS = 20_000
KMV_SIZE = 4_096
TOP_VALUES = 10
_TOP_CARDINALITY_CAP = 5_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _is_categorical(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_dictionary(kind)
    )


def _hashable(kind: pa.DataType) -> bool:
    return not (pa.types.is_nested(kind) or pa.types.is_dictionary(kind))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Column:
    def __init__(self, name: str, kind: pa.DataType) -> None:
        self.name = name
        self.kind = kind
        self.count = 0
        self.nulls = 0
        self.min: Any = None
        self.max: Any = None
        self.mean = 0.0
        self.m2 = 0.0
        self.kmv = np.empty(0, dtype=np.uint64)
        self.top: Counter[Any] | None = Counter() if _is_categorical(kind) else None

    def update(self, values: pa.Array, hashes: np.ndarray | None) -> None:
        n = len(values)
        nulls = values.null_count
        valid = n - nulls
        self.nulls += nulls
        if valid == 0:
            return
        if not pa.types.is_nested(self.kind):
            extremes = pc.min_max(values)
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            if low is not None:
                self.min = low if self.min is None else min(self.min, low)
                self.max = high if self.max is None else max(self.max, high)
        if _is_numeric(self.kind):
            batch_mean = pc.mean(values).as_py()
            batch_var = pc.variance(values, ddof=0).as_py() or 0.0
            total = self.count + valid
            delta = batch_mean - self.mean
            self.mean += delta * valid / total
            self.m2 += batch_var * valid + delta * delta * self.count * valid / total
        self.count += valid
        if hashes is not None:
            self._sketch(hashes)
        if self.top is not None:
            self._count_top(values)

    def _sketch(self, hashes: np.ndarray) -> None:
        if self.kmv.size >= KMV_SIZE:
            hashes = hashes[hashes < self.kmv[-1]]
            if hashes.size == 0:
                return
        merged = np.unique(np.concatenate([self.kmv, hashes]))
        self.kmv = merged[:KMV_SIZE]

    def _count_top(self, values: pa.Array) -> None:
        assert self.top is not None  # nosec B101 - type narrowing
        counts = pc.value_counts(values.drop_null() if values.null_count else values)
        if len(counts) > _TOP_CARDINALITY_CAP:
            self.top = None  # high cardinality: top values say little and cost much
            return
        for value, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        ):
            self.top[value] += count
        if len(self.top) > 4 * _TOP_CARDINALITY_CAP:
            self.top = None

    def distinct(self) -> int:
        if self.kmv.size < KMV_SIZE:
            return int(self.kmv.size)
        estimate = round((KMV_SIZE - 1) / (float(self.kmv[-1]) / 2.0**64))
        return min(estimate, self.count)

    def result(self, sample: np.ndarray | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": str(self.kind),
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": self.nulls / (self.count + self.nulls)
            if self.count + self.nulls
            else 0.0,
            "min": _jsonable(self.min),
            "max": _jsonable(self.max),
        }
        if _hashable(self.kind):
            body["distinct"] = self.distinct()
        if _is_numeric(self.kind) and self.count:
            body["mean"] = self.mean
            body["std"] = math.sqrt(self.m2 / self.count)
            if sample is not None and sample.size:
                qs = np.quantile(sample, QUANTILES)
                body["quantiles"] = {str(q): float(v) for q, v in zip(QUANTILES, qs, strict=True)}
        if self.top is not None:
            ranked = sorted(self.top.items(), key=lambda item: (-item[1], str(item[0])))
            body["top"] = [[_jsonable(v), c] for v, c in ranked[:TOP_VALUES]]
        return body


class ProfileBuilder:
    """Feed record batches with :meth:`update`; :meth:`result` is the column profile."""

    def __init__(self, schema: pa.Schema, *, seed: int = 0) -> None:
        self.schema = schema
        self.rows = 0
        self._columns = [_Column(f.name, f.type) for f in schema]
        self._numeric = [i for i, f in enumerate(schema) if _is_numeric(f.type)]
        self._hashed = [i for i, f in enumerate(schema) if _hashable(f.type)]
        self._rng = np.random.default_rng(seed)
        self._priority = np.empty(0)
        self._sample: list[np.ndarray] = [np.empty(0) for _ in self._numeric]
        import duckdb  # on use: importing this module must not load DuckDB

        self._duck = duckdb.connect()

    def update(self, batch: pa.RecordBatch) -> None:
        """Fold one batch into the profile."""
        if batch.num_rows == 0:
            return
        self.rows += batch.num_rows
        hashes = self._hashes(batch)
        for index, column in enumerate(self._columns):
            column.update(batch.column(index), hashes.get(index))
        self._update_sample(batch)

    def _hashes(self, batch: pa.RecordBatch) -> dict[int, np.ndarray]:
        if not self._hashed:
            return {}
        names = [f"c{i}" for i in self._hashed]
        table = pa.Table.from_arrays([batch.column(i) for i in self._hashed], names=names)
        self._duck.register("profile_batch", table)
        selects = ", ".join(f"CASE WHEN {n} IS NULL THEN NULL ELSE hash({n}) END" for n in names)
        query = f"SELECT {selects} FROM profile_batch"  # noqa: S608  # nosec B608
        result = self._duck.sql(query).to_arrow_table()
        self._duck.unregister("profile_batch")
        return {
            i: result.column(k).drop_null().to_numpy().astype(np.uint64, copy=False)
            for k, i in enumerate(self._hashed)
        }

    def _update_sample(self, batch: pa.RecordBatch) -> None:
        if not self._numeric:
            return
        priority = self._rng.random(batch.num_rows)
        if self._priority.size >= SAMPLE_ROWS:
            threshold = float(np.max(self._priority))
            chosen = np.nonzero(priority < threshold)[0]
        else:
            chosen = np.arange(batch.num_rows)
        if chosen.size == 0:
            return
        merged = np.concatenate([self._priority, priority[chosen]])
        keep = (
            np.argpartition(merged, SAMPLE_ROWS - 1)[:SAMPLE_ROWS]
            if merged.size > SAMPLE_ROWS
            else None
        )
        for slot, index in enumerate(self._numeric):
            values = batch.column(index).take(pa.array(chosen)).cast(pa.float64())
            array = values.to_numpy(zero_copy_only=False)
            combined = np.concatenate([self._sample[slot], array])
            self._sample[slot] = combined if keep is None else combined[keep]
        self._priority = merged if keep is None else merged[keep]

    def result(self) -> dict[str, Any]:
        """The profile: ``{"rows": N, "columns": {name: {...}}}``."""
        samples: dict[int, np.ndarray] = {}
        for slot, index in enumerate(self._numeric):
            values = self._sample[slot]
            samples[index] = values[~np.isnan(values)]
        columns = {c.name: c.result(samples.get(i)) for i, c in enumerate(self._columns)}
        self._duck.close()
        return {"rows": self.rows, "columns": columns}


def profile_table(table: pa.Table) -> dict[str, Any]:
    """Profile an in-memory table (the same code path as a streaming write)."""
    builder = ProfileBuilder(table.schema)
    for batch in table.to_batches(max_chunksize=65_536):
        builder.update(batch)
    return builder.result()


SENSITIVE = frozenset({"pii", "sensitive"})
KEPT_WHEN_SENSITIVE = ("type", "count", "nulls", "null_fraction", "distinct")
"""What a profile keeps of a pii or sensitive column: counts, null rates and its type."""


def redact_profile(profile: dict[str, Any], column_tags: dict[str, str]) -> dict[str, Any]:
    """``profile`` without any value of a column tagged pii or sensitive.

    The profile lives in the metadata database and ``ghaf data show`` prints it: min/max,
    mean, quantiles and top values of an e-mail column would be pii at rest in clear.
    The column is marked ``redacted`` so a reader knows why the values are missing.
    """
    columns = dict(profile.get("columns", {}))
    for name, tag in column_tags.items():
        if tag in SENSITIVE and name in columns:
            kept = {k: v for k, v in columns[name].items() if k in KEPT_WHEN_SENSITIVE}
            columns[name] = {**kept, "redacted": tag}
    return {**profile, "columns": columns}


def _cdf_points(column: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    quantiles = column.get("quantiles")
    low, high = column.get("min"), column.get("max")
    if not quantiles or not isinstance(low, int | float) or not isinstance(high, int | float):
        return None
    xs = np.asarray([float(low), *(float(v) for v in quantiles.values()), float(high)])
    if not np.all(np.isfinite(xs)):
        return None
    ps = [0.0, *(float(q) for q in quantiles), 1.0]
    return np.maximum.accumulate(xs), np.asarray(ps)


def _merged_quantiles(
    a: dict[str, Any], b: dict[str, Any], na: int, nb: int
) -> dict[str, float] | None:
    """Quantiles of the mixture of two columns' piecewise-linear CDFs (approximate)."""
    first, second = _cdf_points(a), _cdf_points(b)
    if first is None or second is None:
        return None
    grid = np.union1d(first[0], second[0])
    cdf = (na * np.interp(grid, *first) + nb * np.interp(grid, *second)) / (na + nb)
    cdf = np.maximum.accumulate(cdf)
    return {str(q): float(np.interp(q, cdf, grid)) for q in QUANTILES}


def _merged_top(a: dict[str, Any], b: dict[str, Any]) -> list[list[Any]] | None:
    if "top" not in a or "top" not in b:
        return None
    counts: Counter[Any] = Counter()
    for value, count in [*a["top"], *b["top"]]:
        counts[value] += count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return [[v, c] for v, c in ranked[:TOP_VALUES]]


def _merged_moments(
    a: dict[str, Any], b: dict[str, Any], na: int, nb: int
) -> tuple[float | None, float | None]:
    """Mean and standard deviation of two parts (None where a part's are unknown or the
    values overflow a double)."""
    if (
        a.get("mean") is None
        or b.get("mean") is None
        or a.get("std") is None
        or b.get("std") is None
    ):
        return None, None
    with np.errstate(over="ignore", invalid="ignore"):
        mean_a, mean_b = np.float64(a["mean"]), np.float64(b["mean"])
        std_a, std_b = np.float64(a["std"]), np.float64(b["std"])
        delta = mean_b - mean_a
        total = na + nb
        m2 = std_a * std_a * na + std_b * std_b * nb + delta * delta * (na * nb / total)
        mean = mean_a + delta * (nb / total)
        std = np.sqrt(m2 / total)
    return (
        float(mean) if np.isfinite(mean) else None,
        float(std) if np.isfinite(std) else None,
    )


def _merged_column(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    na, nb = int(a.get("count", 0)), int(b.get("count", 0))
    if na == 0:
        return {**b} | _nulls(a, b)
    if nb == 0:
        return {**a} | _nulls(a, b)
    body: dict[str, Any] = {"type": a.get("type"), "count": na + nb} | _nulls(a, b)
    body["min"] = _extreme(min, a.get("min"), b.get("min"))
    body["max"] = _extreme(max, a.get("max"), b.get("max"))
    if "distinct" in a and "distinct" in b:  # a lower bound: the union has at least this many
        body["distinct"] = max(int(a["distinct"]), int(b["distinct"]))
    if "mean" in a and "mean" in b:  # Chan's parallel update: exact
        body["mean"], body["std"] = _merged_moments(a, b, na, nb)
        quantiles = _merged_quantiles(a, b, na, nb)
        if quantiles is not None:
            body["quantiles"] = quantiles
    top = _merged_top(a, b)
    if top is not None:
        body["top"] = top
    if "redacted" in a:
        body["redacted"] = a["redacted"]
    return body


def _nulls(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    nulls = int(a.get("nulls", 0)) + int(b.get("nulls", 0))
    seen = nulls + int(a.get("count", 0)) + int(b.get("count", 0))
    return {"nulls": nulls, "null_fraction": nulls / seen if seen else 0.0}


def _extreme(pick: Any, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return right if left is None else left
    try:
        return pick(left, right)
    except TypeError:  # pragma: no cover - mixed JSON forms of one column
        return left


MERGED_APPROXIMATE = ("distinct", "quantiles", "top")
"""What a merged profile states approximately: distinct is a lower bound, quantiles come
from the mixture of the two parts' CDFs, top values from each part's top list."""


def merge_profiles(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """The profile of two row sets, one after the other, from their profiles alone.

    Counts, nulls, min, max, mean and standard deviation are exact; the fields in
    :data:`MERGED_APPROXIMATE` are approximate (the profile says so under
    ``approximate``). An appended dataset version is profiled this way, so that its
    profile costs the new rows only.
    """
    columns_a = earlier.get("columns", {})
    columns_b = later.get("columns", {})
    columns = {
        name: _merged_column(columns_a[name], column) if name in columns_a else column
        for name, column in columns_b.items()
    }
    return {
        "rows": int(earlier.get("rows", 0)) + int(later.get("rows", 0)),
        "columns": columns,
        "approximate": list(MERGED_APPROXIMATE),
    }
