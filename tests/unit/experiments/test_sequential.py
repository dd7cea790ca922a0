"""The mSPRT: its likelihood ratio against direct integration of the mixture, its
running p-value and confidence sequence, and the simulator running the same code."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats import GroupStats, msprt
from ghaf.experiments.stats.sequential import SequentialResult, always_valid_p
from ghaf.experiments.stats.simulate import sequential_p, simulate_looks


@pytest.mark.parametrize(("xc", "xt"), [(100, 100), (100, 115), (100, 140), (120, 90)])
def test_likelihood_ratio_is_the_normal_mixture(xc: int, xt: int) -> None:
    """L = integral of N(D; theta, V) / N(D; 0, V) against N(theta; 0, tau^2), by quad."""
    c = GroupStats.from_conversions("c", 1000, xc)
    t = GroupStats.from_conversions("t", 1000, xt)
    result = msprt(c, t, tau2=0.02**2)
    d, v, tau = result.absolute_lift, result.variance, 0.02
    sd = math.sqrt(v)

    def integrand(theta: float) -> float:
        ratio = stats.norm.pdf(d, theta, sd) / stats.norm.pdf(d, 0, sd)
        return float(ratio * stats.norm.pdf(theta, 0, tau))

    expected, _ = integrate.quad(integrand, -12 * tau, 12 * tau, limit=200)
    assert result.likelihood_ratio == pytest.approx(expected, rel=1e-7)
    assert result.p_value == pytest.approx(min(1.0, 1 / expected), rel=1e-7)
    assert v == pytest.approx(c.variance / 1000 + t.variance / 1000)


def test_confidence_sequence_is_where_the_ratio_stays_below_one_over_alpha() -> None:
    c = GroupStats.from_conversions("c", 5000, 500)
    t = GroupStats.from_conversions("t", 5000, 580)
    result = msprt(c, t, tau2=0.03**2, alpha=0.05)
    v, tau2, d = result.variance, result.tau2, result.absolute_lift

    def lr(theta: float) -> float:
        total = v + tau2
        return math.sqrt(v / total) * math.exp(tau2 * (d - theta) ** 2 / (2 * v * total))

    assert lr(result.ci.low) == pytest.approx(20.0, rel=1e-9)
    assert lr(result.ci.high) == pytest.approx(20.0, rel=1e-9)
    assert result.ci.contains(d)


def test_history_keeps_the_smallest_p_and_intersects_the_sequence() -> None:
    first = msprt(
        GroupStats.from_conversions("c", 1000, 80), GroupStats.from_conversions("t", 1000, 120)
    )
    second = msprt(
        GroupStats.from_conversions("c", 2000, 200),
        GroupStats.from_conversions("t", 2000, 205),
        history=[first],
    )
    alone = msprt(
        GroupStats.from_conversions("c", 2000, 200),
        GroupStats.from_conversions("t", 2000, 205),
        tau2=first.tau2,
    )
    assert second.looks == 2
    assert second.tau2 == first.tau2
    assert second.p_value == min(first.p_value, alone.p_value)
    assert second.ci.low == max(first.ci.low, alone.ci.low)
    assert second.ci.high == min(first.ci.high, alone.ci.high)


def test_default_mixing_variance_is_a_tenth_of_a_pooled_sd_squared() -> None:
    c, t = GroupStats.from_conversions("c", 4000, 400), GroupStats.from_conversions("t", 4000, 400)
    result = msprt(c, t)
    assert result.tau2 == pytest.approx(0.1**2 * c.variance)
    with pytest.raises(InvalidInputError, match="tau2"):
        msprt(c, t, tau2=-1.0)


def test_the_simulator_runs_the_same_test_as_msprt_with_history() -> None:
    looks = simulate_looks(
        experiments=3,
        looks=8,
        units_per_look=400,
        rate_control=0.1,
        rate_treatment=0.13,
        seed=5,
    )
    vectorised = sequential_p(looks)
    for row in range(3):
        history: list = []
        for k in range(8):
            c = GroupStats.from_conversions(
                "c", int(looks.n_control[row, k]), int(looks.conversions_control[row, k])
            )
            t = GroupStats.from_conversions(
                "t", int(looks.n_treatment[row, k]), int(looks.conversions_treatment[row, k])
            )
            history.append(msprt(c, t, history=history))
            assert vectorised[row, k] == pytest.approx(history[-1].p_value, rel=1e-9)


def test_a_nan_look_keeps_the_running_p() -> None:
    p = always_valid_p(np.array([[0.5, 3.0, math.nan, 1.0]]))
    expected = [math.exp(-0.5), math.exp(-3.0), math.exp(-3.0), math.exp(-3.0)]
    assert p[0].tolist() == pytest.approx(expected)


def test_a_stored_look_continues_the_test_after_a_round_trip_through_json() -> None:
    first = msprt(
        GroupStats.from_conversions("c", 1000, 80), GroupStats.from_conversions("t", 1000, 120)
    )
    stored = json.loads(json.dumps(first.to_dict(), allow_nan=False))
    restored = SequentialResult.from_dict(stored)
    assert restored == first
    later_c = GroupStats.from_conversions("c", 2000, 190)
    later_t = GroupStats.from_conversions("t", 2000, 215)
    assert msprt(later_c, later_t, history=[restored]) == msprt(later_c, later_t, history=[first])
