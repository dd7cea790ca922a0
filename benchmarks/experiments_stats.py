"""Issue 20's statistical acceptance as figures: A/A false positives under daily looks,
power and samples to a decision, and the sample-ratio check's error rates.

Each figure sits beside its anchor from the same run: the sequential test's A/A rate
beside the fixed test peeked as often (what a dashboard read daily does), its median
units to a decision beside the fixed-horizon n. Seeds are fixed (the unit tests' seeds),
so a figure changes only when the engine does.
"""

from __future__ import annotations

import math
import time

from benchmarks.common import Figure

SIZES = {"smoke": (1_000, 200, 1_000), "full": (10_000, 1_000, 10_000)}
"""Size -> (A/A experiments, power runs, SRM runs)."""


def run(size: str) -> list[Figure]:
    from ghaf.experiments.stats import sample_ratio_check, two_proportion_sample_size
    from ghaf.experiments.stats.simulate import (
        aa_false_positives,
        power_simulation,
        sequential_coverage,
        simulate_looks,
        srm_simulation,
    )

    aa_runs, power_runs, srm_runs = SIZES[size]
    started = time.perf_counter()
    aa = aa_false_positives(experiments=aa_runs, looks=30, seed=20)
    plan = two_proportion_sample_size(0.10, 0.02, alpha=0.05, power=0.8)
    power = power_simulation(planned_n=plan.n_control, runs=power_runs, horizon_factor=2, seed=21)
    correct = srm_simulation(units=100_000, served_share=0.5, runs=srm_runs, seed=22)
    skew_100k = srm_simulation(units=100_000, served_share=0.505, runs=srm_runs, seed=24)
    skew_200k = srm_simulation(units=200_000, served_share=0.505, runs=srm_runs, seed=23)
    lifted = simulate_looks(
        experiments=aa_runs // 2,
        looks=30,
        units_per_look=1_000,
        rate_control=0.10,
        rate_treatment=0.12,
        seed=25,
    )
    coverage = sequential_coverage(lifted, 0.02, alpha=0.05)
    seconds = time.perf_counter() - started
    exact_100k = sample_ratio_check({"control": 50_500, "treatment": 49_500})
    exact_200k = sample_ratio_check({"control": 101_000, "treatment": 99_000})
    pct = 100.0
    return [
        Figure(
            "experiments_aa_fpr_sequential_30_daily_looks",
            aa.sequential_peeking * pct,
            "%",
            "fixed_z_peeked_daily",
            aa.fixed_peeking * pct,
            higher_is_better=False,
        ),
        Figure(
            "experiments_aa_fpr_fixed_one_look", aa.fixed_once * pct, "%", higher_is_better=False
        ),
        Figure("experiments_aa_runs", aa.experiments, "experiments"),
        Figure("experiments_confidence_sequence_coverage_30_looks", coverage * pct, "%"),
        Figure("experiments_power_planned_n_per_variant", plan.n_control, "units"),
        Figure("experiments_power_fixed_at_planned_n", power.fixed_detected * pct, "%"),
        Figure(
            "experiments_power_sequential_by_planned_n",
            power.sequential_detected_by_planned_n * pct,
            "%",
        ),
        Figure(
            "experiments_power_sequential_by_2x_planned_n",
            power.sequential_detected_by_horizon * pct,
            "%",
        ),
        Figure(
            "experiments_median_units_to_decision_sequential",
            power.median_n_to_decision,
            "units/variant",
            "fixed_horizon_n",
            plan.n_control,
            higher_is_better=False,
        ),
        Figure(
            "experiments_median_units_to_decision_sequential_all_runs",
            power.median_n_to_decision_all,
            "units/variant",
            "fixed_horizon_n",
            plan.n_control,
            higher_is_better=False,
        ),
        Figure("experiments_power_runs", power.runs, "runs"),
        Figure(
            "experiments_srm_false_flags_correct_split_100k",
            correct.flagged * pct,
            "%",
            higher_is_better=False,
        ),
        Figure("experiments_srm_flagged_50_5_at_100k_total", skew_100k.flagged * pct, "%"),
        Figure("experiments_srm_flagged_50_5_at_200k_total", skew_200k.flagged * pct, "%"),
        # -log10 p: the check flags above 3 (p < 0.001); 50,500/49,500 sits at 2.81
        Figure(
            "experiments_srm_neg_log10_p_exact_50500_49500",
            -math.log10(exact_100k.p_value),
            "-log10 p",
        ),
        Figure(
            "experiments_srm_neg_log10_p_exact_101000_99000",
            -math.log10(exact_200k.p_value),
            "-log10 p",
        ),
        Figure("experiments_simulations_wall", seconds, "s", higher_is_better=False),
    ]
