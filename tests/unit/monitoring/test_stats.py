"""Each statistic against its oracle: scipy (KS, Wasserstein, chi-square, BH), NumPy (PSI, JS)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from ghaf.monitoring import stats


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300) if b != 0 else abs(a)


CASES = [
    (100_000, 100_000, 0.1, None),  # W5 size, drifted: the log-space smirnov path
    (100_000, 100_000, 0.0, None),
    (50_000, 120_000, 0.02, 1),  # ties
    (20_000, 3_000, 0.05, None),
    (300, 500, 0.2, 1),  # scipy's exact path
    (5_000, 5_000, 0.0, 0),  # heavy ties
    (7, 40, 1.0, None),
]


@pytest.mark.parametrize(("n1", "n2", "shift", "digits"), CASES)
def test_ks_and_wasserstein_equal_scipy(n1: int, n2: int, shift: float, digits: int | None) -> None:
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    if digits is not None:
        a, b = np.round(a, digits), np.round(b, digits)
    got = stats.two_sample(np.sort(a), np.sort(b))
    want = sps.ks_2samp(a, b)
    assert rel(got.ks_statistic, float(want.statistic)) <= 1e-9
    assert rel(got.ks_pvalue, float(want.pvalue)) <= 1e-9
    assert rel(got.wasserstein, float(sps.wasserstein_distance(a, b))) <= 1e-9


@pytest.mark.parametrize("d", np.linspace(0.0067, 0.08, 25))
def test_fast_smirnov_pvalue_equals_scipy_across_its_band(d: float) -> None:
    for n1, n2 in ((100_000, 100_000), (40_000, 90_000)):
        m, n = sorted([float(n1), float(n2)], reverse=True)
        want = float(sps.kstwo.sf(d, np.round(m * n / (m + n))))
        got = stats.ks_pvalue(d, n1, n2, np.zeros(0), np.zeros(0))
        assert rel(got, want) <= 1e-9 or (want < 1e-300 and got < 1e-300)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=1, max_size=60),
    st.lists(st.integers(-20, 20), min_size=1, max_size=60),
)
def test_ks_wasserstein_property_against_scipy(xs: list[int], ys: list[int]) -> None:
    a, b = np.array(xs, dtype=float) / 4, np.array(ys, dtype=float) / 4
    got = stats.two_sample(np.sort(a), np.sort(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's exact -> asymp fallback
        want = sps.ks_2samp(a, b)
    assert rel(got.ks_statistic, float(want.statistic)) <= 1e-9
    assert rel(got.ks_pvalue, float(want.pvalue)) <= 1e-9
    assert abs(got.wasserstein - sps.wasserstein_distance(a, b)) <= 1e-9 * max(
        1.0, sps.wasserstein_distance(a, b)
    )


def test_chi_square_equals_scipy_contingency() -> None:
    rng = np.random.default_rng(3)
    ref = rng.multinomial(10_000, np.full(8, 1 / 8))
    cur = rng.multinomial(7_000, np.r_[np.full(4, 0.13), np.full(4, 0.12)])
    got = stats.chi_square(ref, cur)
    want = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert rel(got[0], float(want.statistic)) <= 1e-9
    assert rel(got[1], float(want.pvalue)) <= 1e-9
    assert got[2] == want.dof


def test_chi_square_drops_empty_categories_and_handles_one_level() -> None:
    assert stats.chi_square(np.array([5, 0]), np.array([7, 0])) == (0.0, 1.0, 0)
    stat, p, dof = stats.chi_square(np.array([10, 0, 5]), np.array([3, 0, 9]))
    want = sps.chi2_contingency(np.array([[10, 5], [3, 9]]), correction=False)
    assert rel(stat, float(want.statistic)) <= 1e-9 and dof == 1 and rel(p, want.pvalue) < 1e-9


def _psi_reference(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    total = 0.0
    for pc, qc in zip(p_counts, q_counts, strict=True):
        p = max(pc / p_counts.sum(), 1e-4)
        q = max(qc / q_counts.sum(), 1e-4)
        total += (q - p) * np.log(q / p)
    return float(total)


def _js_reference(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    p, q = p_counts / p_counts.sum(), q_counts / q_counts.sum()
    m = (p + q) / 2
    kl = lambda a: sum(x * np.log2(x / y) for x, y in zip(a, m, strict=True) if x > 0)  # noqa: E731
    return float(np.sqrt((kl(p) + kl(q)) / 2))


def test_psi_js_tv_match_plain_numpy_on_reference_quantile_bins() -> None:
    rng = np.random.default_rng(11)
    ref, cur = np.sort(rng.normal(0, 1, 20_000)), np.sort(rng.normal(0.3, 1.2, 15_000))
    edges = stats.quantile_edges(ref, 10)
    np.testing.assert_allclose(edges, np.quantile(ref, np.linspace(0, 1, 11)[1:-1]), rtol=1e-12)
    rc, cc = stats.bin_counts(ref, edges), stats.bin_counts(cur, edges)
    assert rc.sum() == ref.size and cc.sum() == cur.size
    np.testing.assert_array_equal(rc, np.histogram(ref, np.r_[-np.inf, edges, np.inf])[0])
    rcf, ccf = rc.astype(float), cc.astype(float)
    assert rel(float(stats.psi(rcf, ccf)), _psi_reference(rcf, ccf)) <= 1e-9
    assert rel(float(stats.jensen_shannon(rcf, ccf)), _js_reference(rcf, ccf)) <= 1e-9
    assert rel(float(stats.jensen_shannon(rcf, ccf)), jensenshannon(rcf, ccf, base=2)) <= 1e-9
    tv = 0.5 * np.abs(rcf / rcf.sum() - ccf / ccf.sum()).sum()
    assert rel(float(stats.total_variation(rcf, ccf)), tv) <= 1e-12


def test_binned_statistics_are_vectorized_over_columns() -> None:
    rng = np.random.default_rng(5)
    ref = rng.integers(1, 100, (7, 10)).astype(float)
    cur = rng.integers(0, 100, (7, 10)).astype(float)
    many = stats.psi(ref, cur)
    for i in range(7):
        assert rel(float(many[i]), _psi_reference(ref[i], cur[i])) <= 1e-9
        assert rel(float(stats.jensen_shannon(ref, cur)[i]), _js_reference(ref[i], cur[i])) < 1e-9


def test_benjamini_hochberg_equals_scipy() -> None:
    p = np.random.default_rng(2).random(50) ** 3
    np.testing.assert_allclose(
        stats.benjamini_hochberg(p), sps.false_discovery_control(p), rtol=1e-12
    )
    assert stats.benjamini_hochberg(np.zeros(0)).size == 0
