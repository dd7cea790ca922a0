"""Metric values against scikit-learn and fairlearn computed directly; bootstrap coverage."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)
from sklearn import metrics as skm

from ghaf.errors import InvalidInputError
from ghaf.evaluation import bootstrap_compare, evaluate
from ghaf.evaluation.metrics import expected_calibration_error, regression_metrics, robustness


def _data(n: int = 2000, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    gender = rng.choice(["f", "m"], n)
    age = rng.choice(["18-30", "31-50", "51+"], n)
    return y, p, gender, age


def test_classification_metrics_match_sklearn() -> None:
    y, p, gender, age = _data()
    result = evaluate(y, p, threshold=0.4, slices={"age": age}, sensitive={"gender": gender})
    m = result.metrics
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    tn, fp, fn, tp = skm.confusion_matrix(y, p >= 0.4).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    assert m["precision"] == pytest.approx(skm.precision_score(y, p >= 0.4))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p >= 0.4))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p >= 0.4))
    for value in ("18-30", "31-50", "51+"):
        mask = age == value
        assert result.slices["age"][value]["auc"] == pytest.approx(
            skm.roc_auc_score(y[mask], p[mask])
        )


def test_fairness_matches_fairlearn() -> None:
    y, p, gender, age = _data(seed=3)
    result = evaluate(y, p, sensitive={"gender": gender, "age": age})
    pred = (p >= 0.5).astype(int)
    for name, groups in (("gender", gender), ("age", age)):
        got = result.fairness[name]
        assert got["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y, pred, sensitive_features=groups)
        )
        assert got["demographic_parity_ratio"] == pytest.approx(
            demographic_parity_ratio(y, pred, sensitive_features=groups)
        )
        assert got["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y, pred, sensitive_features=groups)
        )
        for group, rate in got["selection_rate"].items():
            assert rate == pytest.approx(pred[groups == group].mean())
    flat = result.flat_metrics()
    assert "fairness.gender.demographic_parity_difference" in flat


def test_calibration_error_against_numpy_reference() -> None:
    y, p, _, _ = _data(seed=5)
    edges = np.linspace(0, 1, 11)
    total = 0.0
    for i in range(10):
        upper = p <= edges[i + 1] if i == 9 else p < edges[i + 1]
        mask = (p >= edges[i]) & upper
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    assert expected_calibration_error(y, p) == pytest.approx(total / y.size)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    pred = y + rng.normal(scale=0.3, size=500)
    m = regression_metrics(y, pred)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_robustness_flags_a_fragile_model() -> None:
    x = np.random.default_rng(11).normal(size=(1000, 3))

    def stable(features: np.ndarray) -> np.ndarray:
        return np.full(features.shape[0], 0.2)

    def fragile(features: np.ndarray) -> np.ndarray:
        if np.isnan(features).any():
            raise ValueError("Input contains NaN")
        return (features[:, 0] > 0).astype(float)

    assert robustness(stable, x) == {
        "noise_score_shift": 0.0,
        "noise_flip_rate": 0.0,
        "missing_score_shift": 0.0,
        "missing_flip_rate": 0.0,
    }
    shaky = robustness(fragile, x, noise=0.5)
    assert shaky["noise_flip_rate"] > 0.05
    assert shaky["missing_flip_rate"] == 1.0


def test_bad_input_is_named() -> None:
    with pytest.raises(InvalidInputError, match="same length"):
        evaluate([0, 1], [0.1])
    with pytest.raises(InvalidInputError, match="0/1"):
        evaluate([0, 2], [0.1, 0.2])
    with pytest.raises(InvalidInputError, match="cannot be bootstrapped"):
        bootstrap_compare([0, 1], [0.1, 0.2], [0.2, 0.3], metric="nope")


@pytest.mark.parametrize("metric", ["accuracy", "brier"])
def test_bootstrap_interval_covers_true_difference_at_nominal_rate(metric: str) -> None:
    """Simulate evaluation sets where the challenger's true advantage is known."""
    rng = np.random.default_rng(42)
    n, sims, hits = 400, 300, 0
    for sim in range(sims):
        y = rng.integers(0, 2, n)
        if metric == "accuracy":
            # Each model is right with a fixed probability: true difference 0.85 - 0.80.
            champ_ok = rng.random(n) < 0.80
            chall_ok = rng.random(n) < 0.85
            champ = np.where(champ_ok == (y == 1), 0.9, 0.1)
            chall = np.where(chall_ok == (y == 1), 0.9, 0.1)
            true_improvement = 0.05
        else:
            # Each model is off by min(|z|, 1): its true Brier is E[min(|z|, 1)^2].
            e_champ = np.minimum(np.abs(rng.normal(0, 0.3, n)), 1.0)
            e_chall = np.minimum(np.abs(rng.normal(0, 0.2, n)), 1.0)
            champ = np.where(y == 1, 1 - e_champ, e_champ)
            chall = np.where(y == 1, 1 - e_chall, e_chall)
            true_improvement = _true_brier(0.3) - _true_brier(0.2)
        result = bootstrap_compare(
            y, champ, chall, metric=metric, confidence=0.9, resamples=400, seed=sim
        )
        hits += result.ci_low <= true_improvement <= result.ci_high
    coverage = hits / sims
    assert 0.84 <= coverage <= 0.96, coverage


_BRIER_CACHE: dict[float, float] = {}


def _true_brier(sd: float) -> float:
    if sd not in _BRIER_CACHE:
        z = np.random.default_rng(123).normal(0, sd, 2_000_000)
        _BRIER_CACHE[sd] = float(np.mean(np.minimum(np.abs(z), 1.0) ** 2))
    return _BRIER_CACHE[sd]


def test_auc_bootstrap_detects_a_better_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    champ = np.clip(0.2 * y + rng.random(1000) * 0.8, 0, 1)
    chall = np.clip(0.5 * y + rng.random(1000) * 0.5, 0, 1)
    result = bootstrap_compare(y, champ, chall, metric="auc", resamples=200)
    assert result.improvement == pytest.approx(
        skm.roc_auc_score(y, chall) - skm.roc_auc_score(y, champ)
    )
    assert result.ci_low > 0 and result.p_better == 1.0
    worse = bootstrap_compare(y, chall, champ, metric="brier", resamples=200)
    assert worse.ci_high < 0


def test_html_report_has_the_plots() -> None:
    from ghaf.evaluation import render_report

    y, p, gender, age = _data()
    evaluation = evaluate(
        y, p, slices={"age": age}, sensitive={"gender": gender}, champion_score=p * 0.9
    )
    page = render_report(evaluation, "fraud <v2>")
    for caption in (
        "ROC",
        "Precision-recall",
        "Calibration",
        "auc by age",
        "selection rate by gender",
    ):
        assert f"<figcaption>{caption}</figcaption>" in page
    assert "fraud &lt;v2&gt;" in page and "Champion vs challenger" in page
    again = type(evaluation).from_json(evaluation.to_json())
    assert again.flat_metrics() == pytest.approx(evaluation.flat_metrics(), nan_ok=True)
