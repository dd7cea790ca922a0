"""The drift engine: calibrated under no drift, powerful on small shifts, calm on bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as sps

from ghaf.errors import InvalidInputError
from ghaf.monitoring import ColumnOverride, DriftOptions, build_profile, compare_profiles
from ghaf.monitoring.profile import Profile
from tests.unit.monitoring.w5 import w5_tables

NO_DOMAIN = DriftOptions(domain_classifier=False)


def _compare(ref: pa.Table, cur: pa.Table, options: DriftOptions = NO_DOMAIN) -> dict[str, object]:
    report = compare_profiles(build_profile(ref, seed=1), build_profile(cur, seed=2), options)
    return {c.column: c for c in report.columns}


def _window(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        **{f"x{i}": rng.normal(0, 1, n) for i in range(4)},
        **{f"c{i}": np.array(list("abcde"))[rng.integers(0, 5, n)] for i in range(2)},
    }


def test_false_positive_rate_is_nominal_over_200_seeded_repetitions() -> None:
    alpha, reps, n = 0.05, 200, 1_000
    rejections = np.zeros(6)
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        res = _compare(pa.table(_window(rng, n)), pa.table(_window(rng, n)))
        rejections += [res[k].p_value <= alpha for k in ("x0", "x1", "x2", "x3", "c0", "c1")]
    # Per column: 200 Bernoulli(0.05) trials; a two-sided 99.9% binomial interval.
    lo, hi = sps.binom.ppf([0.0005, 0.9995], reps, alpha)
    assert all(lo <= r <= hi for r in rejections), rejections
    pooled = rejections.sum() / (reps * 6)
    assert abs(pooled - alpha) <= 3.3 * np.sqrt(alpha * (1 - alpha) / (reps * 6)), pooled


def test_planted_tenth_sd_shift_in_100k_rows_is_detected() -> None:
    rng = np.random.default_rng(42)
    n = 100_000
    ref = pa.table({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n)})
    cur = pa.table({"a": rng.normal(0.1, 1, n), "b": rng.normal(5, 2, n)})
    res = _compare(ref, cur)
    assert res["a"].verdict == "drift"
    assert res["b"].verdict == "ok"


def test_w5_flags_exactly_the_planted_columns() -> None:
    ref, cur = w5_tables(seed=7)
    report = compare_profiles(build_profile(ref), build_profile(cur), NO_DOMAIN)
    assert sorted(report.drifted_columns) == ["cat_0", *[f"num_0{i}" for i in range(5)]]


def test_statistics_in_the_report_equal_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 30_000), rng.normal(0.05, 1, 20_000)
    res = _compare(pa.table({"a": a}), pa.table({"a": b}))["a"]
    want = sps.ks_2samp(a, b)
    assert res.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(want.pvalue, rel=1e-9)
    w = sps.wasserstein_distance(a, b) / np.std(a)
    assert res.distances["wasserstein"] == pytest.approx(w, rel=1e-9)


def test_bad_input_gets_a_verdict_per_column_not_a_crash() -> None:
    n = 500
    rng = np.random.default_rng(1)
    ref = pa.table(
        {
            "gone": rng.normal(size=n),
            "typed": rng.normal(size=n),
            "nulls": pa.nulls(n, pa.float64()),
            "const": np.ones(n),
            "tiny": rng.normal(size=n),
            "when": pa.array(np.arange(n).astype("datetime64[s]")),
            "fine": rng.normal(size=n),
        }
    )
    cur = pa.table(
        {
            "typed": np.array(["x"] * n),
            "nulls": pa.nulls(n, pa.float64()),
            "const": np.ones(n),
            "tiny": pa.array([1.0] * 5 + [None] * (n - 5)),
            "when": pa.array(np.arange(n).astype("datetime64[s]")),
            "fine": rng.normal(size=n),
        }
    )
    res = _compare(ref, cur)
    assert res["gone"].verdict == "missing"
    assert res["typed"].verdict == "type mismatch" and "string" in res["typed"].note
    assert res["nulls"].verdict == "all null"
    assert res["const"].verdict == "ok" and res["const"].statistic == 0.0
    assert res["tiny"].verdict == "insufficient data"
    assert res["when"].verdict == "skipped"
    assert res["fine"].verdict == "ok"


def test_single_distinct_value_that_moves_is_drift() -> None:
    res = _compare(pa.table({"c": np.ones(200)}), pa.table({"c": np.full(200, 2.0)}))
    assert res["c"].verdict == "drift" and "single distinct" in res["c"].note


def test_empty_window_is_a_clear_error() -> None:
    from ghaf.monitoring import profile_window

    with pytest.raises(InvalidInputError, match="no rows"):
        profile_window(pa.table({"a": pa.array([], pa.float64())}))


def test_overrides_change_method_threshold_or_skip() -> None:
    rng = np.random.default_rng(3)
    ref = pa.table({"a": rng.normal(0, 1, 5000), "b": rng.normal(0, 1, 5000)})
    cur = pa.table({"a": rng.normal(0.3, 1, 5000), "b": rng.normal(0.3, 1, 5000)})
    options = DriftOptions(
        domain_classifier=False,
        overrides={
            "a": ColumnOverride(method="psi", threshold=5.0),
            "b": ColumnOverride(skip=True),
        },
    )
    res = _compare(ref, cur, options)
    assert res["a"].method == "psi" and res["a"].verdict == "ok"
    assert res["a"].statistic == res["a"].distances["psi"]
    assert res["b"].verdict == "skipped"


def test_unseen_categories_are_named() -> None:
    ref = pa.table({"c": ["a", "b"] * 100})
    cur = pa.table({"c": ["a", "b", "zz"] * 100})
    res = _compare(ref, cur)["c"]
    assert res.verdict == "drift" and "'zz'" in res.note


def test_profiles_merge_from_micro_batches_and_round_trip() -> None:
    ref, _ = w5_tables(seed=7, rows=20_000)
    whole = build_profile(ref, seed=0)
    parts = [build_profile(ref.slice(i, 5_000), seed=i) for i in range(0, 20_000, 5_000)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.num_rows == whole.num_rows and merged.exact
    for name in ("num_00", "cat_3"):
        a, b = merged.columns[name], whole.columns[name]
        assert (a.count, a.nulls, a.categories) == (b.count, b.nulls, b.categories)
        assert a.total == pytest.approx(b.total)
    np.testing.assert_array_equal(merged.sorted_values("num_03"), whole.sorted_values("num_03"))
    again = Profile.from_bytes(merged.to_bytes())
    np.testing.assert_array_equal(again.sorted_values("num_03"), whole.sorted_values("num_03"))


def test_sample_is_bounded_and_uniform_when_windows_exceed_capacity() -> None:
    rng = np.random.default_rng(9)
    values = rng.normal(0, 1, 60_000)
    batches = [pa.record_batch({"x": values[i : i + 7_000]}) for i in range(0, 60_000, 7_000)]
    profile = build_profile(iter(batches), capacity=10_000, seed=4)
    assert profile.num_rows == 60_000 and profile.sample.num_rows == 10_000
    assert not profile.exact
    # The sample is a uniform draw: KS against the full data does not reject.
    assert sps.ks_2samp(profile.sorted_values("x"), values).pvalue > 0.001
    assert profile.columns["x"].count == 60_000


def test_domain_classifier_names_the_drifting_columns() -> None:
    ref, cur = w5_tables(seed=7, rows=30_000)
    report = compare_profiles(build_profile(ref), build_profile(cur))
    assert report.domain is not None and report.domain.drifted
    top = {name for name, _ in report.domain.top_columns[:3]}
    assert top <= {"cat_0", *[f"num_0{i}" for i in range(5)]}
    same = compare_profiles(build_profile(ref), build_profile(ref.slice(0, 15_000)))
    assert same.domain is not None and not same.domain.drifted
