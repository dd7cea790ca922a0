"""Sample-ratio check, sample size and multiple-metric correction against scipy and
statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats import adjust, sample_ratio_check, two_proportion_sample_size


@pytest.mark.parametrize(
    ("counts", "weights"),
    [
        ({"a": 50_500, "b": 49_500}, None),
        ({"a": 101_000, "b": 99_000}, None),
        ({"a": 9_000, "b": 1_050}, {"a": 90, "b": 10}),
        ({"a": 330, "b": 350, "c": 320}, {"a": 1, "b": 1, "c": 1}),
    ],
)
def test_srm_matches_scipy_chisquare(
    counts: dict[str, int], weights: dict[str, float] | None
) -> None:
    result = sample_ratio_check(counts, weights)
    names = sorted(counts)
    share = np.array([1.0 if weights is None else weights[n] for n in names])
    expected = share / share.sum() * sum(counts.values())
    ref = stats.chisquare([counts[n] for n in names], expected)
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert result.mismatch == (ref.pvalue < 0.001)
    assert result.df == len(counts) - 1


def test_srm_flags_50_5_against_49_5_at_100k_per_variant() -> None:
    result = sample_ratio_check({"control": 101_000, "treatment": 99_000})
    assert result.mismatch
    assert result.p_value < 1e-5


def test_srm_refuses_weights_for_other_variants() -> None:
    with pytest.raises(InvalidInputError, match="weights name"):
        sample_ratio_check({"a": 10, "b": 12}, {"a": 1, "c": 1})
    with pytest.raises(InvalidInputError, match="at least two variants"):
        sample_ratio_check({"a": 10})
    with pytest.raises(InvalidInputError, match="positive"):
        sample_ratio_check({"a": 10, "b": 12}, {"a": 1, "b": 0})


@pytest.mark.parametrize(
    ("baseline", "mde", "alpha", "power", "ratio"),
    [(0.10, 0.02, 0.05, 0.8, 1.0), (0.05, 0.005, 0.01, 0.9, 1.0), (0.3, -0.03, 0.05, 0.8, 2.0)],
)
def test_sample_size_matches_statsmodels(
    baseline: float, mde: float, alpha: float, power: float, ratio: float
) -> None:
    plan = two_proportion_sample_size(baseline, mde, alpha=alpha, power=power, ratio=ratio)
    h = proportion_effectsize(baseline + mde, baseline)
    n = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    assert plan.effect_size == pytest.approx(h, rel=1e-12)
    assert plan.n_control == int(np.ceil(n))
    assert plan.n_treatment == int(np.ceil(n * ratio))


def test_sample_size_refuses_impossible_plans() -> None:
    with pytest.raises(InvalidInputError, match="baseline"):
        two_proportion_sample_size(0.99, 0.02)
    with pytest.raises(InvalidInputError, match="power"):
        two_proportion_sample_size(0.1, 0.02, power=0.01)


@settings(max_examples=20, deadline=None)  # multipletests takes ~0.2 s a call
@given(
    p=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=25),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_corrections_match_statsmodels_multipletests(p: list[float], alpha: float) -> None:
    for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
        result = adjust(p, method=ours, alpha=alpha)  # type: ignore[arg-type]
        rejected, adjusted, _, _ = multipletests(p, alpha=alpha, method=theirs)
        assert np.allclose(result.adjusted, adjusted, rtol=1e-12, atol=1e-15)
        assert list(result.rejected) == list(rejected)


def test_correction_refuses_missing_p_values() -> None:
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        adjust([0.01, float("nan")])
    with pytest.raises(InvalidInputError, match="unknown correction"):
        adjust([0.01], method="bonf")  # type: ignore[arg-type]
