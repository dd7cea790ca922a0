"""A canary's guardrails and decision on evidence, without servers: the score intervals
against statsmodels, the metrics parser, each check's verdicts, and the order that makes
the evaluator fail closed (a breach rolls back; a gap pauses; only a full pass moves on).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from ghaf.errors import InvalidInputError
from ghaf.experiments.canary_checks import (
    decide,
    error_rate_check,
    latency_check,
    quality_check,
    run_checks,
)
from ghaf.experiments.canary_evidence import Evidence, Side, count_since, parse_requests
from ghaf.experiments.canary_records import PAUSED, RUNNING, Check
from ghaf.experiments.rollout import load_plan, parse_plan
from ghaf.experiments.stats.proportions import newcombe_difference, wilson_interval

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
PLAN = parse_plan(
    {"metrics": ["http://127.0.0.1:9"], "min_samples": 50, "min_time_s": 10,
     "quality": {"min_labels": 100, "max_drop": 0.02}}
)  # fmt: skip
STATUSES = ("pass", "breach", "inconclusive", "missing", "nan")


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.sampled_from([0.01, 0.05, 0.1, 0.2]))  # fmt: skip
def test_wilson_matches_statsmodels(counts: tuple[int, int], alpha: float) -> None:
    successes, n = counts
    low, high = wilson_interval(successes, n, alpha)
    ref = proportion_confint(successes, n, alpha=alpha, method="wilson")
    assert low == pytest.approx(ref[0], abs=1e-12) and high == pytest.approx(ref[1], abs=1e-12)
    assert 0.0 <= low <= successes / n <= high <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 3000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 3000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.sampled_from([0.05, 0.1]),
)
def test_newcombe_matches_statsmodels(a: tuple[int, int], b: tuple[int, int], alpha: float) -> None:
    diff, low, high = newcombe_difference(*a, *b, alpha)
    ref = confint_proportions_2indep(
        a[0], a[1], b[0], b[1], method="newcomb", compare="diff", alpha=alpha
    )
    assert low == pytest.approx(float(ref[0]), abs=1e-9)
    assert high == pytest.approx(float(ref[1]), abs=1e-9)
    assert low <= diff <= high


def test_intervals_refuse_what_is_no_proportion() -> None:
    with pytest.raises(InvalidInputError, match="not a proportion"):
        wilson_interval(3, 2)
    with pytest.raises(InvalidInputError, match="alpha"):
        wilson_interval(1, 2, alpha=1.5)


def test_the_metrics_parser_sums_workers_and_counts_restarts() -> None:
    text = "\n".join(
        [
            "# HELP ghaf_requests_total Inference requests by status code.",
            "# TYPE ghaf_requests_total counter",
            'ghaf_requests_total{code="200",model="fraud",version="1",worker="0"} 10',
            'ghaf_requests_total{code="200",model="fraud",version="1",worker="1"} 5.0',
            'ghaf_requests_total{code="500",model="fraud",version="2"} 3',
            'ghaf_requests_total{code="200",model="fraud",version="2"} NaN',
            'ghaf_requests_total{code="200",model="a \\"quoted\\" one",version="1"} 1',
            'ghaf_request_seconds_count{model="fraud",version="1"} 15',
        ]
    )
    found = parse_requests(text)
    assert found["fraud:1:200"] == 15.0 and found["fraud:2:500"] == 3.0
    assert np.isnan(found["fraud:2:200"]) and found['a "quoted" one:1:200'] == 1.0
    before = {"t": {"fraud:2:200": 100.0, "fraud:2:500": 1.0}}
    now = {"t": {"fraud:2:200": 20.0, "fraud:2:500": 4.0, "fraud:1:200": 9.0}}
    # fraud:2's 200s went below their baseline: the server restarted; they count from 0
    assert count_since(before, now, "fraud", "2") == (23.0, 3.0)


def _evidence(
    *,
    requests: float | None = 200,
    errors: float | None = 0,
    latencies: np.ndarray | None = None,
    seconds: float = 60,
    problems: dict[str, str] | None = None,
    canary_scores: np.ndarray | None = None,
    champion_scores: np.ndarray | None = None,
    labels: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> Evidence:
    rng = np.random.default_rng(3)
    latencies = rng.uniform(1, 20, 200) if latencies is None else latencies
    canary = Side(
        predictions=latencies.size,
        latencies_ms=latencies,
        scores=rng.normal(size=200) if canary_scores is None else canary_scores,
        labelled=labels[0],
        successes=labels[1],
        requests=requests,
        errors=errors,
    )
    champion = Side(
        predictions=2000,
        scores=rng.normal(size=2000) if champion_scores is None else champion_scores,
        labelled=labels[2],
        successes=labels[3],
        requests=1800,
        errors=0,
    )
    end = T0 + timedelta(seconds=seconds)
    return Evidence(T0, end, canary, champion, {}, dict(problems or {}))


def test_a_healthy_window_passes_every_check_and_advances() -> None:
    checks = run_checks(_evidence(labels=(300, 297, 3000, 2970)), PLAN, last_step=False)
    assert {c.name: c.status for c in checks} == {
        "traffic": "pass", "step": "pass", "error_rate": "pass", "p99_latency_ms": "pass",
        "quality": "pass",
    }  # fmt: skip
    assert decide(checks, RUNNING, last_step=False).action == "advance"
    assert decide(checks, RUNNING, last_step=True).action == "promote"
    assert decide(checks, PAUSED, last_step=False).action == "hold"


def test_error_rate_breaches_only_on_evidence() -> None:
    breach = error_rate_check(_evidence(requests=43, errors=13), PLAN, 0.01)
    assert breach.status == "breach" and breach.bound is not None and breach.bound > 0.01
    assert breach.samples == {"requests": 43, "errors": 13}
    one = error_rate_check(_evidence(requests=5, errors=1), PLAN, 0.01)
    assert one.status == "inconclusive"  # one stray error is not worth a rollback
    assert error_rate_check(_evidence(requests=5, errors=3), PLAN, 0.01).status == "breach"
    assert error_rate_check(_evidence(requests=20, errors=0), PLAN, 0.01).status == "inconclusive"
    assert error_rate_check(_evidence(requests=np.nan), PLAN, 0.01).status == "nan"
    down = _evidence(problems={"metrics": "http://x/metrics did not answer (ConnectError)"})
    assert error_rate_check(down, PLAN, 0.01).status == "missing"
    silent = error_rate_check(_evidence(requests=0, errors=0), PLAN, 0.01)
    assert silent.status == "missing" and "the log 200" in silent.detail


def test_p99_latency() -> None:
    slow = np.r_[np.full(180, 5.0), np.full(20, 900.0)]  # 10 % over 500 ms
    check = latency_check(_evidence(latencies=slow), PLAN, 500.0)
    assert check.status == "breach" and check.value is not None and check.value > 500
    fast = latency_check(_evidence(latencies=np.full(200, 5.0)), PLAN, 500.0)
    assert fast.status == "pass" and fast.value == pytest.approx(5.0)
    nan = latency_check(_evidence(latencies=np.r_[np.full(199, 5.0), np.nan]), PLAN, 500.0)
    assert nan.status == "nan"


def test_quality_on_labels_is_a_non_inferiority_test() -> None:
    quality = PLAN.quality
    assert quality is not None
    worse = quality_check(_evidence(labels=(300, 270, 3000, 3000)), PLAN, quality, last_step=False)
    assert worse.status == "breach" and worse.source == "labels"  # 90 % vs 100 %
    assert worse.bound is not None and worse.bound < -0.02
    # 5 points worse than a perfect champion on 200 labels is caught
    five = quality_check(_evidence(labels=(200, 190, 1800, 1800)), PLAN, quality, last_step=False)
    assert five.status == "breach"
    few = quality_check(_evidence(labels=(120, 119, 3000, 2990)), PLAN, quality, last_step=False)
    assert few.status == "inconclusive"  # within 2 points, not yet shown to be


def test_while_labels_are_pending_score_drift_stands_in() -> None:
    quality = PLAN.quality
    assert quality is not None
    same = quality_check(_evidence(), PLAN, quality, last_step=False)
    assert same.status == "pass" and same.source == "drift" and "labels pending" in same.detail
    shifted = quality_check(
        _evidence(canary_scores=np.random.default_rng(1).normal(2, 1, 200)), PLAN, quality,
        last_step=False,
    )  # fmt: skip
    assert shifted.status == "breach" and shifted.value is not None and shifted.value > 0.25
    last = quality_check(_evidence(), PLAN, quality, last_step=True)
    assert last.status == "inconclusive" and "promotion needs labels" in last.detail
    nan_scores = np.r_[np.random.default_rng(2).normal(size=199), np.nan]
    nan = quality_check(_evidence(canary_scores=nan_scores), PLAN, quality, last_step=False)
    assert nan.status == "nan" and "NaN" in nan.detail


def test_no_traffic_a_missing_source_or_nan_pauses() -> None:
    quiet = _evidence(requests=0, errors=0, latencies=np.empty(0))
    verdict = decide(run_checks(quiet, PLAN, last_step=False), RUNNING, last_step=False)
    assert verdict.action == "pause" and "no traffic" in verdict.reasons[0]
    down = _evidence(problems={"prediction_log": "no prediction log at /x"})
    verdict = decide(run_checks(down, PLAN, last_step=True), RUNNING, last_step=True)
    assert verdict.action == "pause" and any("no prediction log" in r for r in verdict.reasons)
    moved = _evidence(problems={"routing": "the deployment's weights changed"})
    assert decide(run_checks(moved, PLAN, last_step=False), RUNNING, last_step=False).action == (
        "pause"
    )
    # already paused: it holds (a person resumes it), and a breach still rolls back
    assert decide(run_checks(quiet, PLAN, last_step=False), PAUSED, last_step=False).action == (
        "hold"
    )
    failing = _evidence(requests=100, errors=40, latencies=np.empty(0))
    assert decide(run_checks(failing, PLAN, last_step=False), PAUSED, last_step=False).action == (
        "rollback"
    )


def test_a_young_step_holds() -> None:
    checks = run_checks(_evidence(seconds=3), PLAN, last_step=False)
    verdict = decide(checks, RUNNING, last_step=False)
    assert verdict.action == "hold" and any("3 s of 10 s" in r for r in verdict.reasons)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=8), st.booleans(), st.booleans())
def test_the_decision_fails_closed(statuses: list[str], paused: bool, last: bool) -> None:
    checks = [Check(f"c{i}", s, None, None, s) for i, s in enumerate(statuses)]
    action = decide(checks, PAUSED if paused else RUNNING, last_step=last).action
    if "breach" in statuses:
        assert action == "rollback"
    elif {"missing", "nan"} & set(statuses):
        assert action == ("hold" if paused else "pause")
    elif paused or "inconclusive" in statuses:
        assert action == "hold"
    else:
        assert action == ("promote" if last else "advance")
    # never a step forward unless every check passed
    if action in ("advance", "promote"):
        assert set(statuses) == {"pass"} and not paused


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("steps: [10, 5]\nmax_error_rate: null", "steps"),
        ("steps: [0, 50]\nmax_error_rate: null", "steps"),
        ("{}", "max_error_rate"),
        ("metrics: ['http://user:pw@host:1']", "metrics"),
        ("metrics: ['http://h:1/admin']", "metrics"),
        ("max_error_rate: null\nquality: {max_drop: 2}", "quality.max_drop"),
        ("max_error_rate: null\nquality: {kind: mse}", "quality.kind"),
        ("max_error_rate: null\npromote_alias: 'no spaces'", "promote_alias"),
        ("max_error_rate: null\nstep: [1]", "step"),
        ("[1, 2]", "mapping"),
    ],
)
def test_a_bad_plan_names_its_field(text: str, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field.replace(".", r"\.")):
        load_plan(text, "plan.yaml")
