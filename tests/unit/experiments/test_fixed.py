"""The fixed-horizon tests against scipy and statsmodels, and their invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from ghaf.experiments.stats import GroupStats, two_proportion_z, welch_t


@pytest.mark.parametrize(
    ("nc", "xc", "nt", "xt"),
    [(1000, 100, 1000, 130), (5000, 480, 4800, 431), (250, 3, 260, 9), (20000, 2000, 20100, 2010)],
)
def test_two_proportion_z_matches_statsmodels(nc: int, xc: int, nt: int, xt: int) -> None:
    result = two_proportion_z(
        GroupStats.from_conversions("c", nc, xc), GroupStats.from_conversions("t", nt, xt)
    )
    z, p = proportions_ztest([xt, xc], [nt, nc])
    low, high = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-10)
    assert (result.ci.low, result.ci.high) == pytest.approx((low, high), rel=1e-10)
    assert result.absolute_lift == pytest.approx(xt / nt - xc / nc)
    assert (result.control.n, result.treatment.n, result.alpha) == (nc, nt, 0.05)


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 400), rng.normal(10.4, 3.5, 650)
    result = welch_t(GroupStats.from_values("c", a), GroupStats.from_values("t", b), alpha=0.1)
    ref = stats.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.9)
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert result.df == pytest.approx(ref.df, rel=1e-12)
    assert (result.ci.low, result.ci.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert result.ci.level == pytest.approx(0.9)


def test_relative_lift_se_is_the_delta_method() -> None:
    """The gradient of mt/mc - 1 by finite differences, against the closed form."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(5, 1, 300), rng.normal(5.5, 1.5, 300)
    c, t = GroupStats.from_values("c", a), GroupStats.from_values("t", b)
    result = welch_t(c, t)
    eps = 1e-6

    def f(mt: float, mc: float) -> float:
        return mt / mc - 1

    grad = np.array(
        [
            (f(t.mean + eps, c.mean) - f(t.mean - eps, c.mean)) / (2 * eps),
            (f(t.mean, c.mean + eps) - f(t.mean, c.mean - eps)) / (2 * eps),
        ]
    )
    cov = np.diag([t.variance / t.n, c.variance / c.n])
    assert result.relative_se == pytest.approx(math.sqrt(grad @ cov @ grad), rel=1e-6)
    assert result.relative_lift == pytest.approx(b.mean() / a.mean() - 1)
    assert result.relative_ci.contains(result.relative_lift)


samples = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 3)), min_size=3, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(a=samples, b=samples, seed=st.integers(0, 2**32 - 1))
def test_welch_properties(a: list[float], b: list[float], seed: int) -> None:
    if np.var(a) == 0 or np.var(b) == 0:
        return  # no spread, no test: covered by the NaN cases of decide
    c, t = GroupStats.from_values("c", a), GroupStats.from_values("t", b)
    result = welch_t(c, t)
    order = np.random.default_rng(seed)
    shuffled = welch_t(
        GroupStats.from_values("c", order.permutation(a)),
        GroupStats.from_values("t", order.permutation(b)),
    )
    swapped = welch_t(t, c)
    assert 0.0 <= result.p_value <= 1.0
    assert result.ci.contains(result.absolute_lift)
    assert shuffled.p_value == pytest.approx(result.p_value, rel=1e-9, abs=1e-12)
    assert shuffled.absolute_lift == pytest.approx(result.absolute_lift, rel=1e-9, abs=1e-9)
    assert swapped.absolute_lift == pytest.approx(-result.absolute_lift, abs=1e-9)
    assert swapped.p_value == pytest.approx(result.p_value, rel=1e-9, abs=1e-12)
    assert swapped.ci.low == pytest.approx(-result.ci.high, rel=1e-9, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    nc=st.integers(2, 100_000),
    nt=st.integers(2, 100_000),
    fc=st.floats(0.001, 0.999),
    ft=st.floats(0.001, 0.999),
)
def test_z_properties(nc: int, nt: int, fc: float, ft: float) -> None:
    xc, xt = round(nc * fc), round(nt * ft)
    c, t = GroupStats.from_conversions("c", nc, xc), GroupStats.from_conversions("t", nt, xt)
    result = two_proportion_z(c, t)
    if math.isnan(result.p_value):  # 0 or 1 everywhere: the pooled SE is 0
        assert xc + xt in (0, nc + nt)
        return
    swapped = two_proportion_z(t, c)
    assert 0.0 <= result.p_value <= 1.0
    assert result.ci.contains(result.absolute_lift)
    assert swapped.absolute_lift == pytest.approx(-result.absolute_lift)
    assert swapped.p_value == pytest.approx(result.p_value)


def test_zero_units_give_nan_not_a_verdict() -> None:
    empty = GroupStats.from_values("t", [])
    result = two_proportion_z(GroupStats.from_conversions("c", 100, 10), empty)
    assert math.isnan(result.p_value)
    assert not result.significant
