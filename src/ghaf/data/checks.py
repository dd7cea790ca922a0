"""Run a contract over a Parquet file: checks compiled to DuckDB SQL, one scan where possible.

Row-level checks (not-null, allowed, regex) become ``count_if(fails)``; a range check
becomes the column's ``min`` and ``max`` compared with its bounds (cheaper than a
comparison per row, and the failing rows are counted in a second query only when the
bounds are crossed); uniqueness, freshness and distribution statistics are aggregates
in the same ``SELECT``; so a passing contract reads the data once. The scan runs on
:mod:`ghaf.data.engine`'s database, with statistics propagation off: it would answer
``min``/``max`` from the footer, whose floating-point bounds leave NaN out. Before
that, the Parquet footer's exact statistics (:mod:`ghaf.data.pqstats`) settle what
they can without reading data: the row count, null counts, integer ranges and allowed sets the
column's bounds lie inside. A quantile within fixed bounds is proved by counting
the values beyond each bound (:mod:`ghaf.data.ranks`), not by sorting the column;
only a check the counts cannot prove passing computes the exact quantile.
Uniqueness of integer keys (compound keys packed into one integer) counts distinct
values in a bitmap sized by the key's bounds (``bitstring_agg``), exact and far
cheaper than a hash table; other keys use ``count(DISTINCT ...)``. Rows with a NULL
key part never conflict (SQL ``UNIQUE``).
Regex and allowed-value checks on a dictionary-encoded string column (few distinct
values) are evaluated once per distinct value: the column is grouped to (value,
count) in the same statement and the counts of failing values summed; exact, as a
check's verdict depends on the value alone.
Referential checks (an anti-join) and reference statistics need one more query each.
Samples of failing rows are fetched only for checks that failed (``LIMIT``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ghaf.data import engine, rust_regex
from ghaf.data.contracts import (
    Allowed,
    Check,
    Contract,
    Distribution,
    Freshness,
    NotNull,
    Range,
    References,
    Regex,
    RowCount,
    Unique,
    type_matches,
)
from ghaf.data.pqstats import FileStats, read_stats
from ghaf.data.ranks import passes_by_rank, rank_bounds, rank_countable, rank_sql
from ghaf.data.report import CheckResult, ContractReport
from ghaf.errors import InvalidInputError

SAMPLE_ROWS = 5
BITMAP_MAX_BITS = 1 << 28
"""Largest key range counted in a bitmap (32 MiB per thread); wider keys use a hash."""
EXACT_QUANTILE_ROWS = 20_000_000
"""Up to this many rows a quantile is exact (8 bytes a value held); above, approximate."""
RefResolver = Callable[[str], Path]
"""Turns a dataset ref into a local Parquet path (for referential and reference checks)."""


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a contract value (strings quoted, numbers checked, times typed)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"contract value {value!r} is not finite")
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
        return f"TIMESTAMPTZ '{value.astimezone(UTC).isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def fail_predicate(check: Check) -> str | None:
    """SQL that is true for a row failing a row-level check, else ``None``."""
    if isinstance(check, NotNull):
        return f"{ident(check.column)} IS NULL"
    if isinstance(check, Range):
        col = ident(check.column)
        low, high = _bounds(check)
        parts = [f"{col} {op} {bound}" for op, bound in (("<", low), (">", high)) if bound]
        return f"({' OR '.join(parts)})"
    if isinstance(check, Allowed):
        values = ", ".join(literal(v) for v in check.values)
        return f"({ident(check.column)} NOT IN ({values}))"
    if isinstance(check, Regex):
        return f"(NOT regexp_matches({ident(check.column)}, {literal(check.pattern)}))"
    return None


def _stat_sql(check: Distribution, rows: int) -> str:
    """The statistic; quantiles exact (interpolated) up to EXACT_QUANTILE_ROWS, else t-digest."""
    col = ident(check.column)
    if check.stat == "mean":
        return f"avg({col})"
    if check.stat == "std":
        return f"stddev_pop({col})"
    q = _quantile_q(check)
    function = "quantile_cont" if rows <= EXACT_QUANTILE_ROWS else "approx_quantile"
    return f"{function}({col}, {q!r})"


def _quantile_q(check: Distribution) -> float | None:
    """The quantile a median/quantile check asks for, else ``None``."""
    if check.stat == "median":
        return 0.5
    if check.stat == "quantile":
        return float(check.q if check.q is not None else 0.5)
    return None


def _rank_sql(check: Distribution, stats: FileStats) -> str | None:
    """Rank counts that can prove a quantile inside fixed bounds (see :mod:`ranks`)."""
    column = stats.columns.get(check.column)
    if _quantile_q(check) is None or check.reference is not None or column is None:
        return None
    bounds = rank_bounds(check.min, check.max)
    if bounds is None or not rank_countable(column.type):
        return None
    return rank_sql(ident(check.column), bounds)


def _within_bounds_sql(check: Range) -> str:
    """TRUE when the column's extremes lie inside the range, so no row fails; NULL when
    it has no values (nulls pass). DuckDB orders NaN above every number, so a NaN makes
    ``max`` NaN and the result FALSE, as the row predicate counts NaN as failing."""
    col = ident(check.column)
    low, high = _bounds(check)
    sides = (("min", ">=", low), ("max", "<=", high))
    parts = [f"{extreme}({col}) {op} {bound}" for extreme, op, bound in sides if bound]
    return f"({' AND '.join(parts)})"


def _bounds(check: Range) -> tuple[str, str]:
    """The range's bounds as SQL literals, ``""`` for a missing one (one of them is set)."""
    low = "" if check.min is None else literal(check.min)
    return low, "" if check.max is None else literal(check.max)


def _unique_sql(check: Unique, stats: FileStats) -> str:
    """Rows beyond the first of each non-null key: exact, by bitmap where the bounds allow."""
    cols = [ident(c) for c in check.columns]
    present = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    no_nulls = all(
        (column := stats.columns.get(name)) is not None and column.null_count == 0
        for name in check.columns
    )
    keyed = "count(*)" if no_nulls else f"count_if({present})"
    key = _packed_key(check, stats)
    if key is not None:
        expr, width = key
        distinct = f"bit_count(bitstring_agg({expr}, 0::BIGINT, {width - 1}::BIGINT))"
    elif len(cols) == 1:
        distinct = f"count(DISTINCT {cols[0]})"
    else:
        distinct = f"count(DISTINCT CASE WHEN {present} THEN ({', '.join(cols)}) END)"
    return f"coalesce({keyed} - {distinct}, 0)"


def _packed_key(check: Unique, stats: FileStats) -> tuple[str, int] | None:
    """The key as one integer in ``[0, width)`` from integer columns' exact bounds."""
    limit = min(BITMAP_MAX_BITS, max(1 << 16, 64 * stats.num_rows))
    parts, width = [], 1
    for name in reversed(check.columns):
        column = stats.columns.get(name)
        if column is None or column.min is None or column.max is None:
            return None
        if not pa.types.is_integer(column.type):
            return None
        span = column.max - column.min + 1
        if width * span > limit:
            return None
        value = f"CAST({ident(name)} AS BIGINT)"
        if column.min:
            value = f"({value} - ({column.min}::BIGINT))"
        parts.append(value if width == 1 else f"{value} * {width}")
        width *= span
    return " + ".join(parts), width


def _column_type(stats: FileStats, column: str) -> pa.DataType | None:
    found = stats.columns.get(column)
    return found.type if found is not None else None


def _per_value(check: Check, stats: FileStats) -> bool:
    """Whether a check runs once per distinct value (regex, allowed on few strings)."""
    if not isinstance(check, Regex | Allowed):
        return False
    column = stats.columns.get(check.column)
    return column is not None and column.dictionary


def _per_value_sql(path: Path, column: str, checks: list[Check]) -> str:
    """Failing rows of each check, from the column grouped to (value, rows)."""
    rows = ident("rows" if column != "rows" else "rows_")
    sums = ", ".join(f"sum({rows}) FILTER (WHERE {fail_predicate(check)})" for check in checks)
    grouped = (
        f"SELECT {ident(column)}, count(*) AS {rows} "  # noqa: S608  # nosec B608 - quoted
        f"FROM {_scan(path, row_numbers=False)} GROUP BY {ident(column)}"
    )
    return f"SELECT {sums} FROM ({grouped})"  # noqa: S608  # nosec B608 - quoted identifiers


def _scan(path: Path, *, row_numbers: bool = True) -> str:
    if not row_numbers:
        return f"read_parquet({literal(str(path))})"
    return f"read_parquet({literal(str(path))}, file_row_number = true)"


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    return value


def _settled_by_stats(check: Check, stats: FileStats) -> int | None:
    """A row-level check's exact failure count from footer statistics, if they settle it."""
    column = stats.columns.get(check.columns_checked()[0]) if check.row_level else None
    if column is None:
        return None
    if isinstance(check, NotNull):
        return column.null_count
    if column.min is None or column.max is None:
        return None
    if isinstance(check, Range) and pa.types.is_integer(column.type):
        low, high = check.min, check.max
        low_ok = low is None or (isinstance(low, int | float) and column.min >= low)
        high_ok = high is None or (isinstance(high, int | float) and column.max <= high)
        return 0 if low_ok and high_ok else None
    if isinstance(check, Allowed) and column.max - column.min < 1024:
        boolean = pa.types.is_boolean(column.type)
        # Only exact integer values (bools for a boolean column) can cover the bounds.
        allowed = {
            int(v) for v in check.values if isinstance(v, int) and isinstance(v, bool) == boolean
        }
        if all(v in allowed for v in range(column.min, column.max + 1)):
            return 0
    return None


class ContractRunner:
    """Runs one contract over one Parquet file."""

    def __init__(
        self, contract: Contract, path: Path, *, resolve: RefResolver | None = None
    ) -> None:
        self.contract = contract
        self.path = path
        self.resolve = resolve
        self.con = engine.cursor()  # exact filters and one-pass settings: see engine

    def _one(self, sql: str) -> tuple[Any, ...] | None:
        rows = self.con.execute(sql).fetchall()
        return rows[0] if rows else None

    def schema_problems(self) -> list[CheckResult]:
        """Missing columns and wrong types, from the file's schema alone."""
        schema = pq.read_schema(self.path)
        results = []
        for spec in self.contract.columns:
            if spec.name not in schema.names:
                results.append(
                    CheckResult(
                        f"schema({spec.name})",
                        "schema",
                        "error",
                        (spec.name,),
                        1,
                        0,
                        f"column {spec.name!r} is missing",
                    )
                )
            elif spec.type and not type_matches(spec.type, schema.field(spec.name).type):
                actual = schema.field(spec.name).type
                results.append(
                    CheckResult(
                        f"schema({spec.name})",
                        "schema",
                        "error",
                        (spec.name,),
                        1,
                        0,
                        f"column {spec.name!r} has type {actual}, contract says {spec.type}",
                    )
                )
        if self.contract.strict_columns:
            known = {c.name for c in self.contract.columns}
            for name in schema.names:
                if name not in known:
                    results.append(
                        CheckResult(
                            f"schema({name})",
                            "schema",
                            "error",
                            (name,),
                            1,
                            0,
                            f"column {name!r} is not in the contract",
                        )
                    )
        for check in self.contract.all_checks():
            if isinstance(check, Freshness) and check.column in schema.names:
                kind = schema.field(check.column).type
                if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
                    results.append(
                        CheckResult(
                            check.label,
                            check.kind,
                            "error",
                            (check.column,),
                            1,
                            0,
                            f"freshness needs a timestamp or date column; "
                            f"{check.column!r} is {kind}",
                        )
                    )
            for column in check.columns_checked():
                if column not in schema.names:
                    results.append(
                        CheckResult(
                            check.label,
                            check.kind,
                            "error",
                            (column,),
                            1,
                            0,
                            f"check {check.label} names column {column!r}, "
                            "which the data does not have",
                        )
                    )
        return results

    def run(self) -> ContractReport:
        """Every check; schema problems stop before scanning."""
        started = time.perf_counter()
        problems = self.schema_problems()
        if problems:
            rows = pq.ParquetFile(self.path).metadata.num_rows
            return ContractReport(rows, problems, time.perf_counter() - started)
        checks = self.contract.all_checks()
        stats = read_stats(self.path)
        total = stats.num_rows
        selects = ["count(*)"]
        slots: list[tuple[Check, int]] = []
        by_check: dict[int, Any] = {}
        by_value: dict[str, list[Check]] = {}
        on_polars: list[Regex] = []
        for check in checks:
            known = _settled_by_stats(check, stats)
            if known is not None:
                by_check[id(check)] = known
                continue
            if _per_value(check, stats):
                by_value.setdefault(check.columns_checked()[0], []).append(check)
                continue
            if isinstance(check, Regex) and rust_regex.eligible(
                check, _column_type(stats, check.column)
            ):
                on_polars.append(check)
                continue
            expr = self._aggregate(check, stats)
            if expr is not None:
                slots.append((check, len(selects)))
                selects.append(expr)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghaf-regex") as pool:
            beside = (
                pool.submit(rust_regex.count_mismatches, self.path, on_polars)
                if on_polars
                else None
            )
            if slots or by_value:
                total = self._scan_once(selects, slots, by_value, by_check)
                bounded = [check for check, _ in slots if isinstance(check, Range)]
                self._count_crossed_ranges(bounded, by_check)
            by_check.update(self._regex_counts(beside, on_polars))
        results = [self._result(check, by_check.get(id(check)), total) for check in checks]
        return ContractReport(total, results, time.perf_counter() - started)

    def _scan_once(
        self,
        selects: list[str],
        slots: list[tuple[Check, int]],
        by_value: dict[str, list[Check]],
        by_check: dict[int, Any],
    ) -> int:
        """The single scan: every aggregate, and each per-value column grouped; the row count."""
        import duckdb  # on use: importing this module must not load DuckDB

        parts = [f"SELECT {', '.join(selects)} FROM {_scan(self.path, row_numbers=False)}"]  # noqa: S608  # nosec B608 - quoted identifiers and literals
        width = len(selects)
        for column, grouped in by_value.items():
            parts.append(_per_value_sql(self.path, column, grouped))
            slots = slots + [(check, width + i) for i, check in enumerate(grouped)]
            width += len(grouped)
        joined = ", ".join(f"({part}) AS q{i}" for i, part in enumerate(parts))
        sql = f"SELECT * FROM {joined}"  # noqa: S608  # nosec B608 - built from the above
        try:
            row = self._one(sql)
        except duckdb.Error as exc:
            raise InvalidInputError(
                f"contract could not run on {self.path.name}: {exc}",
                hint="check the contract's values against the column types",
            ) from exc
        assert row is not None  # nosec B101 - type narrowing
        by_check.update({id(check): row[index] for check, index in slots})
        return int(row[0])

    def _regex_counts(
        self, beside: Future[list[int]] | None, checks: list[Regex]
    ) -> dict[int, int]:
        """Failing rows of the checks polars ran; in DuckDB instead if polars refused one."""
        if beside is None:
            return {}
        try:
            counts = beside.result()
        except rust_regex.EngineError:
            counts = self._count_failing(checks)
        return {id(check): count for check, count in zip(checks, counts, strict=True)}

    def _count_crossed_ranges(self, bounded: list[Range], by_check: dict[int, Any]) -> None:
        """Range checks judged by their extremes: TRUE or NULL (no values) means 0 failing
        rows; FALSE (a bound crossed) gets the failing rows counted, all in one more scan."""
        crossed = [check for check in bounded if by_check[id(check)] is False]
        by_check.update({id(check): 0 for check in bounded})
        counts = self._count_failing(crossed) if crossed else []
        by_check.update({id(check): n for check, n in zip(crossed, counts, strict=True)})

    def _count_failing(self, checks: Sequence[Check]) -> list[int]:
        """Each row-level check's failing rows, counted in one scan of the file."""
        counts = ", ".join(f"count_if({fail_predicate(check)})" for check in checks)
        row = self._one(f"SELECT {counts} FROM {_scan(self.path, row_numbers=False)}")  # noqa: S608  # nosec B608 - quoted identifiers and literals
        assert row is not None  # nosec B101 - an aggregate returns one row
        return [int(count or 0) for count in row]  # count_if over no rows is NULL

    def _aggregate(self, check: Check, stats: FileStats) -> str | None:
        if isinstance(check, Range):
            return _within_bounds_sql(check)
        predicate = fail_predicate(check)
        if predicate is not None:
            return f"count_if({predicate})"
        if isinstance(check, Unique):
            return _unique_sql(check, stats)
        if isinstance(check, Freshness):
            return f"max({ident(check.column)})"
        if isinstance(check, Distribution):
            return _rank_sql(check, stats) or _stat_sql(check, stats.num_rows)
        return None

    def _result(self, check: Check, value: Any, total: int) -> CheckResult:
        base = (check.label, check.kind, check.severity, check.columns_checked())
        if check.row_level:
            failed = int(value or 0)
            samples = self._samples(fail_predicate(check) or "FALSE") if failed else []
            return CheckResult(*base, failed, total, f"{failed:,} of {total:,} rows fail", samples)
        if isinstance(check, Unique):
            failed = int(value or 0)
            samples = self._duplicate_samples(check) if failed else []
            return CheckResult(*base, failed, total, f"{failed:,} duplicate rows", samples)
        if isinstance(check, RowCount):
            ok = (check.min is None or total >= check.min) and (
                check.max is None or total <= check.max
            )
            return CheckResult(
                *base, 0 if ok else 1, total, f"{total:,} rows (bounds {check.min}..{check.max})"
            )
        if isinstance(check, Freshness):
            return self._freshness(check, value, total)
        if isinstance(check, Distribution):
            return self._distribution(check, value, total)
        if isinstance(check, References):
            return self._references(check, total)
        raise InvalidInputError(f"check kind {check.kind!r} cannot run")  # pragma: no cover

    def _samples(self, predicate: str) -> list[dict[str, Any]]:
        sql = (
            f"SELECT * FROM {_scan(self.path)} WHERE {predicate} "  # noqa: S608  # nosec B608
            f"ORDER BY file_row_number LIMIT {SAMPLE_ROWS}"
        )
        table = self.con.sql(sql).to_arrow_table()
        return [{k: _to_jsonable(v) for k, v in r.items()} for r in table.to_pylist()]

    def _duplicate_samples(self, check: Unique) -> list[dict[str, Any]]:
        cols = ", ".join(ident(c) for c in check.columns)
        sql = (
            f"SELECT {cols}, count(*) AS occurrences FROM {_scan(self.path)} "  # noqa: S608  # nosec B608
            f"WHERE {' AND '.join(ident(c) + ' IS NOT NULL' for c in check.columns)} "
            f"GROUP BY {cols} HAVING count(*) > 1 ORDER BY occurrences DESC LIMIT {SAMPLE_ROWS}"
        )
        table = self.con.sql(sql).to_arrow_table()
        return [{k: _to_jsonable(v) for k, v in r.items()} for r in table.to_pylist()]

    def _freshness(self, check: Freshness, newest: Any, total: int) -> CheckResult:
        base = (check.label, check.kind, check.severity, check.columns_checked())
        now = check.now or datetime.now(UTC)
        if newest is None:
            return CheckResult(*base, 1, total, "no values to judge freshness")
        if isinstance(newest, datetime) and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        if not isinstance(newest, datetime):
            newest = datetime.combine(newest, datetime.min.time(), UTC)
        age = now - newest
        ok = age <= check.max_age
        return CheckResult(
            *base,
            0 if ok else 1,
            total,
            f"newest {newest.isoformat()} is {age} old (max {check.max_age})",
        )

    def _distribution(self, check: Distribution, value: Any, total: int) -> CheckResult:
        base = (check.label, check.kind, check.severity, check.columns_checked())
        if isinstance(value, dict):  # rank counts: proof of passing, or compute it exactly
            q = _quantile_q(check)
            if q is not None and passes_by_rank(value, q):
                detail = (
                    f"{check.stat} within [{check.min}, {check.max}] "
                    f"(by rank over {int(value['n']):,} values)"
                )
                return CheckResult(*base, 0, total, detail)
            value = self._exact_stat(check)
        if value is None:
            return CheckResult(*base, 1, total, f"{check.stat} is undefined (no values)")
        value = float(value)
        low, high = check.min, check.max
        if check.reference is not None:
            ref_value = self._reference_stat(check)
            tolerance = check.tolerance if check.tolerance is not None else 0.1
            spread = abs(ref_value) * tolerance
            low, high = ref_value - spread, ref_value + spread
        ok = (low is None or value >= low) and (high is None or value <= high)
        return CheckResult(
            *base, 0 if ok else 1, total, f"{check.stat} = {value:.6g}, allowed [{low}, {high}]"
        )

    def _exact_stat(self, check: Distribution) -> Any:
        rows = pq.ParquetFile(self.path).metadata.num_rows
        sql = f"SELECT {_stat_sql(check, rows)} FROM {_scan(self.path, row_numbers=False)}"  # noqa: S608  # nosec B608
        row = self._one(sql)
        return row[0] if row else None

    def _reference_stat(self, check: Distribution) -> float:
        if self.resolve is None or check.reference is None:
            raise InvalidInputError(f"check {check.label}: a reference needs a platform")
        path = self.resolve(check.reference)
        rows = pq.ParquetFile(path).metadata.num_rows
        sql = f"SELECT {_stat_sql(check, rows)} FROM {_scan(path, row_numbers=False)}"  # noqa: S608  # nosec B608
        row = self._one(sql)
        if row is None or row[0] is None:
            raise InvalidInputError(
                f"check {check.label}: reference {check.reference} has no values"
            )
        return float(row[0])

    def _references(self, check: References, total: int) -> CheckResult:
        import duckdb  # on use: importing this module must not load DuckDB

        base = (check.label, check.kind, check.severity, check.columns_checked())
        if self.resolve is None:
            raise InvalidInputError(f"check {check.label}: a referential check needs a platform")
        ref_path = self.resolve(check.dataset)
        col, key = ident(check.column), ident(check.key)
        missing = (
            f"FROM {_scan(self.path)} d WHERE d.{col} IS NOT NULL AND NOT EXISTS "  # noqa: S608  # nosec B608
            f"(SELECT 1 FROM read_parquet({literal(str(ref_path))}) r WHERE r.{key} = d.{col})"
        )
        try:
            row = self._one(f"SELECT count(*) {missing}")
        except duckdb.Error as exc:
            raise InvalidInputError(
                f"check {check.label}: cannot join {check.column} to {check.dataset}.{check.key}: "
                f"{exc}",
                hint="check the key column name and type in the referenced dataset",
            ) from exc
        failed = int(row[0]) if row else 0
        samples: list[dict[str, Any]] = []
        if failed:
            table = self.con.sql(
                f"SELECT d.* {missing} ORDER BY d.file_row_number LIMIT {SAMPLE_ROWS}"
            ).to_arrow_table()
            samples = [{k: _to_jsonable(v) for k, v in r.items()} for r in table.to_pylist()]
        return CheckResult(
            *base,
            failed,
            total,
            f"{failed:,} rows reference a missing {check.dataset}.{check.key}",
            samples,
        )

    def split(self, good: Path, bad: Path) -> tuple[int, int]:
        """Write rows passing every row-level check to ``good`` and the rest to ``bad``."""
        predicates = [p for c in self.contract.all_checks() if (p := fail_predicate(c))]
        failing = " OR ".join(f"coalesce({p}, FALSE)" for p in predicates) or "FALSE"
        counts = []
        for path, where in ((good, f"NOT ({failing})"), (bad, failing)):
            self.con.sql(
                f"COPY (SELECT * EXCLUDE (file_row_number) FROM {_scan(self.path)} "  # noqa: S608  # nosec B608
                f"WHERE {where} ORDER BY file_row_number) TO {literal(str(path))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            counts.append(pq.ParquetFile(path).metadata.num_rows)
        return counts[0], counts[1]

    def close(self) -> None:
        self.con.close()


def run_contract(
    contract: Contract, path: Path, *, resolve: RefResolver | None = None
) -> ContractReport:
    """Run ``contract`` on the Parquet file at ``path``."""
    runner = ContractRunner(contract, path, resolve=resolve)
    try:
        return runner.run()
    finally:
        runner.close()
