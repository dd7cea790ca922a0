"""decide(): guardrails apart from the goal, the sample ratio blocks, and nothing
missing, NaN or empty ever ships."""

from __future__ import annotations

import json
import math

import pytest

from ghaf.experiments.stats import (
    GroupStats,
    Guardrail,
    decide,
    msprt,
    sample_ratio_check,
    two_proportion_z,
    welch_t,
)

SRM_OK = sample_ratio_check({"control": 10_000, "treatment": 10_050})


def _goal(xc: int = 1000, xt: int = 1200, n: int = 10_000):  # type: ignore[no-untyped-def]
    return two_proportion_z(
        GroupStats.from_conversions("control", n, xc),
        GroupStats.from_conversions("treatment", n, xt),
    )


def _latency(shift: float, n: int = 5000):  # type: ignore[no-untyped-def]
    return welch_t(
        GroupStats("control", n, 100.0, 100.0), GroupStats("treatment", n, 100.0 + shift, 100.0)
    )


def _strict_json(decision: object) -> dict:
    text = json.dumps(decision.to_dict(), allow_nan=False)  # type: ignore[attr-defined]
    return json.loads(text)


def test_a_significant_lift_with_healthy_guardrails_ships_and_records_its_numbers() -> None:
    decision = decide(_goal(), [Guardrail("latency_ms", _latency(0.1), margin=1.0)], srm=SRM_OK)
    assert decision.verdict == "ship"
    record = _strict_json(decision)
    assert record["goal"]["p_value"] == pytest.approx(_goal().p_value)
    assert record["goal"]["ci"]["low"] > 0
    assert record["sample_sizes"] == {"control": 10_000, "treatment": 10_000}
    assert record["srm"]["p_value"] == pytest.approx(SRM_OK.p_value)
    assert record["guardrails"][0]["status"] == "ok"
    assert record["goal_p_value_used"] == pytest.approx(_goal().p_value)


def test_a_guardrail_breach_stops_even_a_winning_goal() -> None:
    decision = decide(_goal(), [Guardrail("latency_ms", _latency(5.0), margin=1.0)], srm=SRM_OK)
    assert decision.verdict == "stop"
    assert "latency_ms breached" in decision.reasons[0]
    quality = welch_t(
        GroupStats("control", 5000, 0.9, 0.09), GroupStats("treatment", 5000, 0.85, 0.1275)
    )
    lower_is_worse = Guardrail("accuracy", quality, higher_is_better=True)
    assert decide(_goal(), [lower_is_worse], srm=SRM_OK).verdict == "stop"


def test_a_guardrail_within_its_margin_holds() -> None:
    decision = decide(_goal(), [Guardrail("latency_ms", _latency(0.5), margin=2.0)], srm=SRM_OK)
    assert decision.verdict == "ship"


def test_sample_ratio_mismatch_blocks_and_says_why() -> None:
    bad = sample_ratio_check({"control": 101_000, "treatment": 99_000})
    decision = decide(_goal(), srm=bad)
    assert decision.verdict == "blocked"
    assert "sample-ratio mismatch" in decision.reasons[0]
    assert decide(_goal(), srm=None).verdict == "blocked"


@pytest.mark.parametrize(
    "goal",
    [
        None,
        two_proportion_z(
            GroupStats.from_conversions("control", 0, 0),
            GroupStats.from_conversions("treatment", 100, 20),
        ),
    ],
)
def test_no_data_keeps_running(goal: object) -> None:
    decision = decide(goal, srm=SRM_OK)  # type: ignore[arg-type]
    assert decision.verdict == "keep_running"
    _strict_json(decision)


def test_nan_blocks_never_ships() -> None:
    nan_goal = welch_t(
        GroupStats("control", 100, 1.0, 1.0), GroupStats("treatment", 100, math.nan, 1.0)
    )
    assert decide(nan_goal, srm=SRM_OK).verdict == "blocked"
    nan_guard = Guardrail(
        "error_rate",
        welch_t(
            GroupStats("control", 100, 0.01, math.nan), GroupStats("treatment", 100, 0.01, 0.01)
        ),
    )
    assert decide(_goal(), [nan_guard], srm=SRM_OK).verdict == "blocked"
    record = _strict_json(decide(nan_goal, srm=SRM_OK))
    assert record["goal"]["treatment"]["mean"] is None


def test_a_missing_guardrail_keeps_a_winner_running() -> None:
    decision = decide(_goal(), [Guardrail("accuracy", None, higher_is_better=True)], srm=SRM_OK)
    assert decision.verdict == "keep_running"
    assert "['accuracy'] have no data" in decision.reasons[0]


def test_significantly_worse_stops() -> None:
    assert decide(_goal(1200, 1000), srm=SRM_OK).verdict == "stop"
    assert decide(_goal(1200, 1000), srm=SRM_OK, higher_is_better=False).verdict == "ship"


def test_a_fixed_test_decides_only_at_its_planned_n_and_stops_there_without_a_lift() -> None:
    early = decide(_goal(), srm=SRM_OK, planned_n=20_000)
    assert early.verdict == "keep_running"
    assert "planned 20000" in early.reasons[0]
    flat = decide(_goal(1000, 1010), srm=SRM_OK, planned_n=10_000)
    assert flat.verdict == "stop"
    sequential = msprt(_goal().control, _goal().treatment)
    assert decide(sequential, srm=SRM_OK, planned_n=20_000).verdict == "ship"


def test_secondary_metrics_correct_the_goal_p_value() -> None:
    goal = _goal(1000, 1090)  # p about 0.035
    alone = decide(goal, srm=SRM_OK)
    family = decide(goal, srm=SRM_OK, secondary={"a": _goal(1000, 1000), "b": _goal(1000, 1005)})
    assert alone.verdict == "ship"
    assert family.verdict == "keep_running"
    assert family.correction is not None
    assert family.goal_p_value_used == pytest.approx(goal.p_value * 3)


def test_a_guardrail_with_no_spread_is_judged_on_its_exact_lift() -> None:
    no_errors = two_proportion_z(
        GroupStats.from_conversions("control", 5000, 0),
        GroupStats.from_conversions("treatment", 5000, 0),
    )
    assert math.isnan(no_errors.p_value)
    decision = decide(_goal(), [Guardrail("error_rate", no_errors)], srm=SRM_OK)
    assert decision.verdict == "ship"
    assert decision.guardrails[0].status == "ok"
    slower = welch_t(GroupStats("control", 100, 50.0, 0.0), GroupStats("treatment", 100, 80.0, 0.0))
    assert (
        decide(_goal(), [Guardrail("latency_ms", slower, margin=10)], srm=SRM_OK).verdict == "stop"
    )


def test_a_goal_with_no_spread_or_one_unit_keeps_running() -> None:
    nothing_yet = two_proportion_z(
        GroupStats.from_conversions("control", 300, 0),
        GroupStats.from_conversions("treatment", 300, 0),
    )
    assert decide(nothing_yet, srm=SRM_OK).verdict == "keep_running"
    one = welch_t(
        GroupStats.from_values("control", [1.0]), GroupStats.from_values("treatment", [2.0, 3.0])
    )
    assert decide(one, srm=SRM_OK).verdict == "keep_running"
