"""A quantile check decided by rank counts gives the verdict of the exact quantile."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.data.checks import run_contract
from ghaf.data.contracts import Contract, Distribution
from ghaf.data.ranks import passes_by_rank, rank_bounds


def _exact_verdict(path: Path, q: float, low: float | None, high: float | None) -> bool:
    """Plain DuckDB: the exact quantile, compared with the bounds."""
    sql = f"SELECT quantile_cont(x, {q!r}) FROM read_parquet('{path}')"
    (value,) = duckdb.connect().execute(sql).fetchall()[0]
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _verdict(path: Path, q: float, low: float | None, high: float | None) -> bool:
    check = Distribution(column="x", stat="quantile", q=q, min=low, max=high)
    (result,) = run_contract(Contract(checks=(check,)), path).results
    return result.passed


AT_BOUNDS = [0.0, 1.0, 2.0, 2.5, 3.0, -1.0, 1e300, -1e300]
NEAR_BOUNDS = [float(np.nextafter(b, d)) for b in AT_BOUNDS for d in (-np.inf, np.inf)]
values = st.one_of(
    st.none(),
    st.sampled_from([*AT_BOUNDS, *NEAR_BOUNDS, float("nan"), float("inf"), -float("inf")]),
    st.floats(-4, 4, allow_nan=False),
)
bounds = st.one_of(st.none(), st.sampled_from(AT_BOUNDS))


@settings(max_examples=80, deadline=None)
@given(
    xs=st.lists(values, max_size=40),
    q=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]),
    low=bounds,
    high=bounds,
    as_int=st.booleans(),
)
def test_verdict_equals_the_exact_quantile(
    tmp_path_factory: pytest.TempPathFactory,
    xs: list[float | None],
    q: float,
    low: float | None,
    high: float | None,
    as_int: bool,
) -> None:
    if low is None and high is None:
        low = 0.0
    path = tmp_path_factory.mktemp("ranks") / "d.parquet"
    if as_int:
        ints = [None if v is None or not abs(v) < 2**62 else int(v) for v in xs]
        column = pa.array(ints, pa.int64())
    else:
        column = pa.array(xs, pa.float64())
    pq.write_table(pa.table({"x": column}), path, row_group_size=7)
    assert _verdict(path, q, low, high) == _exact_verdict(path, q, low, high)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (2.0, None, True),  # the median is exactly the lower bound
        (None, 2.0, True),  # ... exactly the upper bound
        (2.0, 2.0, True),
        (float(np.nextafter(2.0, 3.0)), None, False),  # one ulp above it
        (None, float(np.nextafter(2.0, 1.0)), False),
    ],
)
def test_a_quantile_right_at_the_bound(
    tmp_path: Path, low: float | None, high: float | None, expected: bool
) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0]}), path)
    assert _verdict(path, 0.5, low, high) is expected
    assert _exact_verdict(path, 0.5, low, high) is expected


def test_interpolated_median_between_two_values_at_the_bound(tmp_path: Path) -> None:
    # (1 + 2) / 2 = 1.5: the bound lies between the two order statistics.
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, 0.0, 5.0]}), path)
    assert _verdict(path, 0.5, 1.5, None)
    assert not _verdict(path, 0.5, float(np.nextafter(1.5, 2.0)), None)
    assert _verdict(path, 0.5, None, 1.5)


def test_a_passing_check_is_proved_by_rank_and_a_failing_one_reports_the_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": np.arange(1001, dtype=np.float64)}), path)
    ok = Distribution(column="x", stat="median", min=400, max=600)
    bad = Distribution(column="x", stat="quantile", q=0.9, max=800, name="p90")
    passed, failed = run_contract(Contract(checks=(ok, bad)), path).results
    assert passed.failed == 0
    assert "by rank over 1,001 values" in passed.detail
    assert failed.failed == 1
    assert failed.detail.startswith("quantile = 900,")


def test_bounds_with_no_room_left_use_the_exact_quantile() -> None:
    assert rank_bounds(1.0, 1.0) is None
    narrowed = rank_bounds(None, 5.0)
    assert narrowed is not None
    assert 4.999 < narrowed.high < 5.0
    assert narrowed.low <= -(2.0**1000) * (1 - 2.0**-40)
    assert not passes_by_rank({"n": 0, "below": 0, "above": 0}, 0.5)
