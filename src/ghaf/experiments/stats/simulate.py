"""Simulated experiments, vectorised, through the engine's own array functions.

These check the engine's promises (A/A false positives under daily looks, power at the
planned sample size, the sample-ratio check's error rates) and let a team check its own
settings (``tau2``, alpha, traffic) before trusting them. Seeds are arguments: the same
seed gives the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ghaf.experiments.stats.fixed import two_sided_p, z_arrays
from ghaf.experiments.stats.groups import jsonable
from ghaf.experiments.stats.sequential import (
    DEFAULT_EFFECT_SIZE,
    always_valid_p,
    half_width,
    log_likelihood_ratio,
)
from ghaf.experiments.stats.srm import SRM_THRESHOLD, chi_square_arrays

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Looks:
    """Cumulative per-look counts of many simulated two-variant experiments
    (shape: experiments x looks)."""

    n_control: Array
    conversions_control: Array
    n_treatment: Array
    conversions_treatment: Array


def simulate_looks(
    *,
    experiments: int,
    looks: int,
    units_per_look: int,
    rate_control: float,
    rate_treatment: float,
    seed: int,
    share_treatment: float = 0.5,
) -> Looks:
    """Units arrive ``units_per_look`` at a time, each assigned to treatment with
    ``share_treatment``, each converting at its variant's rate."""
    rng = np.random.default_rng(seed)
    shape = (experiments, looks)
    nt = rng.binomial(units_per_look, share_treatment, size=shape)
    nc = units_per_look - nt
    xc = rng.binomial(nc, rate_control)
    xt = rng.binomial(nt, rate_treatment)
    cum = [np.cumsum(a, axis=1).astype(np.float64) for a in (nc, xc, nt, xt)]
    return Looks(*cum)


def _variance(p: Array, n: Array) -> Array:
    """Per-unit sample variance of a 0/1 metric (ddof=1), as GroupStats computes it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(p * (1 - p) * n / (n - 1), dtype=np.float64)


def sequential_p(looks: Looks, *, tau2: float | None = None) -> Array:
    """Always-valid p-values per look (running), as :func:`msprt` with history gives.

    ``tau2`` None: each experiment's default at its first look, then fixed (as msprt).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        pc = looks.conversions_control / looks.n_control
        pt = looks.conversions_treatment / looks.n_treatment
    vc, vt = _variance(pc, looks.n_control), _variance(pt, looks.n_treatment)
    if tau2 is None:
        nc0, nt0 = looks.n_control[:, :1], looks.n_treatment[:, :1]
        pooled = ((nc0 - 1) * vc[:, :1] + (nt0 - 1) * vt[:, :1]) / (nc0 + nt0 - 2)
        mix: Array | float = DEFAULT_EFFECT_SIZE**2 * pooled
    else:
        mix = tau2
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = vc / looks.n_control + vt / looks.n_treatment
    return always_valid_p(log_likelihood_ratio(pt - pc, variance, mix), axis=1)


def sequential_coverage(
    looks: Looks, true_lift: float, *, alpha: float = 0.05, tau2: float | None = None
) -> float:
    """Share of experiments whose confidence sequence (intersected over looks, as
    :func:`msprt` with history) holds ``true_lift`` at every look: at least 1 - alpha."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pc = looks.conversions_control / looks.n_control
        pt = looks.conversions_treatment / looks.n_treatment
    vc, vt = _variance(pc, looks.n_control), _variance(pt, looks.n_treatment)
    if tau2 is None:
        nc0, nt0 = looks.n_control[:, :1], looks.n_treatment[:, :1]
        pooled = ((nc0 - 1) * vc[:, :1] + (nt0 - 1) * vt[:, :1]) / (nc0 + nt0 - 2)
        mix: Array | float = DEFAULT_EFFECT_SIZE**2 * pooled
    else:
        mix = tau2
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = vc / looks.n_control + vt / looks.n_treatment
    width = half_width(variance, mix, alpha)
    low = np.fmax.accumulate(pt - pc - width, axis=1)
    high = np.fmin.accumulate(pt - pc + width, axis=1)
    return float(((low <= true_lift) & (true_lift <= high)).all(axis=1).mean())


def fixed_p(looks: Looks) -> tuple[Array, Array]:
    """Two-proportion z p-values and lifts at every look (valid only at a planned one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pc = looks.conversions_control / looks.n_control
        pt = looks.conversions_treatment / looks.n_treatment
    lift, _, _, z = z_arrays(pc, looks.n_control, pt, looks.n_treatment)
    return two_sided_p(z), lift


@dataclass(frozen=True)
class AAResult:
    """A/A false-positive rates: sequential peeked every look, fixed looked at once at the
    end, and the fixed test peeked every look (the inflation the sequential test avoids)."""

    experiments: int
    looks: int
    units_per_look: int
    rate: float
    alpha: float
    sequential_peeking: float
    fixed_once: float
    fixed_peeking: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def aa_false_positives(
    *,
    experiments: int = 10_000,
    looks: int = 30,
    units_per_look: int = 1_000,
    rate: float = 0.10,
    alpha: float = 0.05,
    seed: int = 20,
    tau2: float | None = None,
) -> AAResult:
    """A/A experiments (no true lift): how often does each way of looking cry lift?"""
    data = simulate_looks(
        experiments=experiments,
        looks=looks,
        units_per_look=units_per_look,
        rate_control=rate,
        rate_treatment=rate,
        seed=seed,
    )
    seq = sequential_p(data, tau2=tau2)
    fixed, _ = fixed_p(data)
    return AAResult(
        experiments=experiments,
        looks=looks,
        units_per_look=units_per_look,
        rate=rate,
        alpha=alpha,
        sequential_peeking=float((seq[:, -1] < alpha).mean()),
        fixed_once=float((fixed[:, -1] < alpha).mean()),
        fixed_peeking=float((fixed < alpha).any(axis=1).mean()),
        seed=seed,
    )


@dataclass(frozen=True)
class PowerResult:
    """Detection of a true lift: the fixed test at the planned n, and the sequential test
    looked at every look up to the horizon (units per variant)."""

    runs: int
    rate_control: float
    rate_treatment: float
    alpha: float
    planned_n: int
    """Units per variant from the power calculation (where the fixed test looks once)."""
    fixed_detected: float
    sequential_detected_by_planned_n: float
    sequential_detected_by_horizon: float
    horizon_n: int
    median_n_to_decision: float
    """Median units per variant at the sequential test's decision, over the runs that
    decided by the horizon."""
    median_n_to_decision_all: float
    """The same over all runs, counting a run with no decision as the horizon (a lower
    bound when over half never decide)."""
    seed: int

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def power_simulation(
    *,
    planned_n: int,
    runs: int = 1_000,
    rate_control: float = 0.10,
    rate_treatment: float = 0.12,
    alpha: float = 0.05,
    looks_to_planned: int = 10,
    horizon_factor: int = 3,
    seed: int = 21,
    tau2: float | None = None,
) -> PowerResult:
    """A true lift: detection by the fixed test with exactly ``planned_n`` units per
    variant, and by the sequential test looked at ``looks_to_planned`` times by then and
    on, at the same pace, up to ``horizon_factor`` times ``planned_n``."""
    rng = np.random.default_rng(seed)
    fixed_c = rng.binomial(planned_n, rate_control, size=runs).astype(np.float64)
    fixed_t = rng.binomial(planned_n, rate_treatment, size=runs).astype(np.float64)
    n = np.full(runs, float(planned_n))
    lift, _, _, z = z_arrays(fixed_c / n, n, fixed_t / n, n)
    fixed_detected = float(((two_sided_p(z) < alpha) & (lift > 0)).mean())

    per_look = 2 * planned_n // looks_to_planned
    data = simulate_looks(
        experiments=runs,
        looks=looks_to_planned * horizon_factor,
        units_per_look=per_look,
        rate_control=rate_control,
        rate_treatment=rate_treatment,
        seed=seed + 1,
    )
    seq = sequential_p(data, tau2=tau2)
    decided = seq < alpha
    ever = decided.any(axis=1)
    first = np.where(ever, decided.argmax(axis=1), decided.shape[1] - 1)
    rows = np.arange(runs)
    per_variant = (data.n_control + data.n_treatment) / 2
    at_decision = per_variant[rows, first]
    horizon = float(per_variant[:, -1].mean())
    censored = np.where(ever, at_decision, horizon)
    return PowerResult(
        runs=runs,
        rate_control=rate_control,
        rate_treatment=rate_treatment,
        alpha=alpha,
        planned_n=planned_n,
        fixed_detected=fixed_detected,
        sequential_detected_by_planned_n=float(decided[:, looks_to_planned - 1].mean()),
        sequential_detected_by_horizon=float(ever.mean()),
        horizon_n=round(horizon),
        median_n_to_decision=float(np.median(at_decision[ever])) if ever.any() else float("nan"),
        median_n_to_decision_all=float(np.median(censored)),
        seed=seed,
    )


@dataclass(frozen=True)
class SrmSimulation:
    """How often the sample-ratio check flags a split drawn at ``served_share``."""

    runs: int
    units: int
    served_share: float
    threshold: float
    flagged: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def srm_simulation(
    *, units: int, served_share: float, runs: int = 10_000, seed: int = 22
) -> SrmSimulation:
    """Experiments planned 50/50 whose units land in control with ``served_share``."""
    rng = np.random.default_rng(seed)
    control = rng.binomial(units, served_share, size=runs)
    counts = np.stack([control, units - control], axis=-1)
    _, p = chi_square_arrays(counts, (0.5, 0.5))
    return SrmSimulation(
        runs=runs,
        units=units,
        served_share=served_share,
        threshold=SRM_THRESHOLD,
        flagged=float((p < SRM_THRESHOLD).mean()),
        seed=seed,
    )
