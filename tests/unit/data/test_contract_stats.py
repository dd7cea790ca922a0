"""Footer statistics and bitmap uniqueness give the same counts as a plain scan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.data.checks import ContractRunner, run_contract
from ghaf.data.contracts import Allowed, Contract, NotNull, Range, Regex, Unique
from ghaf.data.pqstats import read_stats

CONTRACT = Contract(
    checks=(
        NotNull(column="a"),
        NotNull(column="x"),
        Range(column="a", min=-5, max=5),
        Range(column="x", min=-1.0, max=1.0),
        Allowed(column="a", values=tuple(range(-10, 11))),
        Allowed(column="flag", values=(True,)),
        Allowed(column="flag", values=(True, False), name="both"),
        Unique(columns=("a",)),
        Unique(columns=("a", "b")),
        Unique(columns=("s",)),
        Unique(columns=("s", "a")),
        Allowed(column="s", values=("p", "q")),
        Regex(column="s", pattern="^[pr]$"),
    )
)


def _reference(path: Path) -> dict[str, int]:
    """Every count the contract should report, straight from DuckDB over all rows."""
    con = duckdb.connect()
    t = f"read_parquet('{path}')"

    def one(sql: str) -> int:
        row = con.execute(sql).fetchall()[0]
        return int(row[0] or 0)

    def dups(cols: str) -> int:
        present = " AND ".join(f"{c} IS NOT NULL" for c in cols.split(", "))
        groups = f"SELECT count(*) n FROM {t} WHERE {present} GROUP BY {cols}"
        return one(f"SELECT coalesce(sum(n - 1), 0) FROM ({groups})")

    return {
        "not_null(a)": one(f"SELECT count(*) FROM {t} WHERE a IS NULL"),
        "not_null(x)": one(f"SELECT count(*) FROM {t} WHERE x IS NULL"),
        "range(a)": one(f"SELECT count(*) FROM {t} WHERE a < -5 OR a > 5"),
        # NaN sorts above every number in DuckDB, so it fails a maximum. (A WHERE clause
        # here would be pushed down to row-group bounds, which leave NaN out.)
        "range(x)": one(f"SELECT count(*) FILTER (WHERE x < -1 OR x > 1 OR isnan(x)) FROM {t}"),
        "allowed(a)": one(f"SELECT count(*) FROM {t} WHERE a NOT BETWEEN -10 AND 10"),
        "allowed(flag)": one(f"SELECT count(*) FROM {t} WHERE NOT flag"),
        "both": 0,
        "unique(a)": dups("a"),
        "unique(a, b)": dups("a, b"),
        "unique(s)": dups("s"),
        "unique(s, a)": dups("s, a"),
        "allowed(s)": one(f"SELECT count(*) FILTER (WHERE s NOT IN ('p', 'q')) FROM {t}"),
        "regex(s)": one(f"SELECT count(*) FILTER (WHERE NOT regexp_matches(s, '^[pr]$')) FROM {t}"),
    }


ints = st.one_of(st.none(), st.integers(-12, 12))


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            ints,
            st.one_of(st.none(), st.integers(0, 3)),
            st.one_of(st.none(), st.sampled_from([0.5, -2.0, float("nan"), 0.0])),
            st.one_of(st.none(), st.booleans()),
            st.one_of(st.none(), st.sampled_from(["p", "q", "r"])),
        ),
        max_size=60,
    ),
    group=st.integers(1, 20),
    with_stats=st.booleans(),
    dictionary=st.booleans(),
)
def test_counts_match_a_plain_scan(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[object, ...]],
    group: int,
    with_stats: bool,
    dictionary: bool,
) -> None:
    directory = tmp_path_factory.mktemp("stats")
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 5
    table = pa.table(
        {
            "a": pa.array(columns[0], pa.int64()),
            "b": pa.array(columns[1], pa.int32()),
            "x": pa.array(columns[2], pa.float64()),
            "flag": pa.array(columns[3], pa.bool_()),
            "s": pa.array(columns[4], pa.string()),
        }
    )
    path = directory / "d.parquet"
    pq.write_table(
        table,
        path,
        row_group_size=group,
        write_statistics=with_stats,
        use_dictionary=dictionary,
    )
    if any(row[4] is not None for row in rows):  # both ways of checking strings run
        assert read_stats(path).columns["s"].dictionary == dictionary
    report = run_contract(CONTRACT, path)
    assert {r.name: r.failed for r in report.results} == _reference(path)
    assert report.rows == len(rows)


def test_footer_statistics_are_exact_over_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    a = pa.array([5, None, -3, 40, None, None], pa.int64())
    table = pa.table({"a": a, "x": [1.0, float("nan"), None, 2.0, 3.0, 4.0]})
    pq.write_table(table, path, row_group_size=2)
    stats = read_stats(path)
    assert stats.num_rows == 6
    assert (stats.columns["a"].null_count, stats.columns["a"].min, stats.columns["a"].max) == (
        3,
        -3,
        40,
    )
    # Floating-point bounds leave NaN out, so they are never used.
    assert stats.columns["x"].min is None and stats.columns["x"].null_count == 1
    unwritten = tmp_path / "none.parquet"
    pq.write_table(table, unwritten, write_statistics=False)
    assert read_stats(unwritten).columns["a"].null_count is None


def test_a_wide_key_falls_back_to_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    ids = np.array([0, 1 << 40, 1 << 40, 7], np.int64)
    pq.write_table(pa.table({"a": ids, "b": ids % 3}), path)
    contract = Contract(checks=(Unique(columns=("a",)), Unique(columns=("a", "b"))))
    assert [r.failed for r in run_contract(contract, path).results] == [1, 1]


def test_nan_failing_a_range_is_sampled_and_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "nan.parquet"
    # The second row group's written bounds are 0.5..0.5: NaN is left out of them.
    pq.write_table(pa.table({"x": [0.5, 0.2, 0.5, float("nan")]}), path, row_group_size=2)
    runner = ContractRunner(Contract(checks=(Range(column="x", max=1.0),)), path)
    result = runner.run().results[0]
    assert result.failed == 1 and len(result.samples) == 1
    assert runner.split(tmp_path / "good.parquet", tmp_path / "bad.parquet") == (3, 1)
    runner.close()


@pytest.mark.parametrize(
    ("values", "check", "failing"),
    [
        # Extremes inside the bounds: proved from min/max, no second scan needed.
        ([1.5, None, 2.5], Range(column="v", min=1.0, max=3.0), 0),
        ([None, None], Range(column="v", min=1.0), 0),
        # Extremes outside: the failing rows are counted exactly.
        ([0.5, 1.5, 9.0, 7.0, None], Range(column="v", min=1.0, max=6.0), 3),
        ([float("-inf"), 0.0, float("inf")], Range(column="v", max=1.0), 1),
        (["b", "a", "z", None], Range(column="v", min="b"), 1),
        (
            [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 5, 9)],
            Range(column="v", min=datetime(2026, 1, 3, tzinfo=UTC)),
            1,
        ),
    ],
)
def test_a_range_is_judged_by_its_extremes_and_counted_when_crossed(
    tmp_path: Path, values: list[object], check: Range, failing: int
) -> None:
    path = tmp_path / "r.parquet"
    # No footer statistics: the check cannot be settled without reading the data.
    pq.write_table(pa.table({"v": values}), path, write_statistics=False)
    result = run_contract(Contract(checks=(check,)), path).results[0]
    assert result.failed == failing
    assert len(result.samples) == min(failing, 5)
