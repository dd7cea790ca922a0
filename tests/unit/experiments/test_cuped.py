"""CUPED against a NumPy regression, and with both tests."""

from __future__ import annotations

import numpy as np
import pytest

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats import GroupStats, cuped, msprt, welch_t


def _units(seed: int = 7, n: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    variants = np.where(rng.random(n) < 0.5, "control", "treatment")
    x = rng.gamma(2.0, 5.0, n)
    y = 3 + 0.7 * x + rng.normal(0, 2, n) + np.where(variants == "treatment", 0.3, 0.0)
    return y, x, variants


def test_theta_is_the_regression_slope_and_variance_falls_as_rho_squared() -> None:
    y, x, variants = _units()
    result = cuped(y, x, variants)
    design = np.column_stack([np.ones_like(x), x])
    slope = np.linalg.lstsq(design, y, rcond=None)[0][1]
    assert result.theta == pytest.approx(slope, rel=1e-10)
    adjusted = y - slope * (x - x.mean())
    for name in ("control", "treatment"):
        chosen = adjusted[variants == name]
        group = result.group(name)
        assert group.mean == pytest.approx(chosen.mean(), rel=1e-12)
        assert group.variance == pytest.approx(chosen.var(ddof=1), rel=1e-10)
    within = [
        (
            np.var(y[variants == v], ddof=1),
            np.var(adjusted[variants == v], ddof=1),
            (variants == v).sum() - 1,
        )
        for v in ("control", "treatment")
    ]
    before = sum(b * d for b, _, d in within) / sum(d for _, _, d in within)
    after = sum(a * d for _, a, d in within) / sum(d for _, _, d in within)
    assert result.variance_reduction == pytest.approx(1 - after / before, rel=1e-10)
    rho = np.corrcoef(y, x)[0, 1]
    assert result.variance_reduction == pytest.approx(rho**2, abs=0.02)


def test_cuped_keeps_the_lift_and_narrows_both_tests() -> None:
    y, x, variants = _units()
    result = cuped(y, x, variants)
    raw_c = GroupStats.from_values("control", y[variants == "control"])
    raw_t = GroupStats.from_values("treatment", y[variants == "treatment"])
    fixed_raw = welch_t(raw_c, raw_t)
    fixed_adj = welch_t(result.group("control"), result.group("treatment"))
    seq_raw = msprt(raw_c, raw_t, tau2=0.09)
    seq_adj = msprt(result.group("control"), result.group("treatment"), tau2=0.09)
    assert fixed_adj.se < fixed_raw.se * 0.7
    assert (seq_adj.ci.high - seq_adj.ci.low) < (seq_raw.ci.high - seq_raw.ci.low) * 0.7
    assert fixed_adj.ci.contains(0.3)
    assert fixed_adj.p_value < fixed_raw.p_value


def test_cuped_refuses_a_constant_or_missing_covariate() -> None:
    y, x, variants = _units(n=50)
    with pytest.raises(InvalidInputError, match="does not vary"):
        cuped(y, np.ones_like(x), variants)
    x[3] = np.nan
    with pytest.raises(InvalidInputError, match="missing for 1 units"):
        cuped(y, x, variants)
    with pytest.raises(InvalidInputError, match="one metric, covariate and variant"):
        cuped(y[:10], x, variants)
