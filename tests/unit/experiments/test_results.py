"""The package's exported names, and every result's JSON form (strict JSON: no NaN)."""

from __future__ import annotations

import json
import math

import numpy as np

import ghaf.experiments.stats as engine
from ghaf.experiments.stats import (
    GroupStats,
    adjust,
    cuped,
    msprt,
    sample_ratio_check,
    two_proportion_sample_size,
    two_proportion_z,
    welch_t,
)
from ghaf.experiments.stats.simulate import aa_false_positives


def test_exported_members() -> None:
    assert sorted(engine.__all__) == [
        "Decision",
        "GroupStats",
        "Guardrail",
        "adjust",
        "cuped",
        "decide",
        "msprt",
        "sample_ratio_check",
        "two_proportion_sample_size",
        "two_proportion_z",
        "welch_t",
    ]
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_every_result_is_strict_json_with_missing_numbers_as_null() -> None:
    c, t = GroupStats.from_conversions("c", 500, 50), GroupStats.from_conversions("t", 500, 61)
    empty = GroupStats.from_values("t", [])
    rng = np.random.default_rng(1)
    y, x = rng.normal(size=200), rng.normal(size=200)
    results = [
        two_proportion_z(c, t),
        two_proportion_z(c, empty),
        welch_t(c, t),
        msprt(c, t),
        msprt(c, empty),
        sample_ratio_check({"a": 10, "b": 12}),
        cuped(y, x, np.where(np.arange(200) % 2 == 0, "a", "b")),
        adjust([0.01, 0.2]),
        two_proportion_sample_size(0.1, 0.02),
        aa_false_positives(experiments=10, looks=2, units_per_look=100),
    ]
    for result in results:
        record = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert isinstance(record, dict)
    nan_record = two_proportion_z(c, empty).to_dict()
    assert nan_record["p_value"] is None
    assert math.isnan(two_proportion_z(c, empty).p_value)
