"""CBPE and realized performance against NumPy references and a simulated calibrated
model: with no concept shift the estimate lands within tolerance of what labels show."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.errors import InvalidInputError
from ghaf.monitoring.cbpe import (
    estimate_binary,
    expected_accuracy,
    expected_roc_auc,
    fit_calibration,
    realized_binary,
    roc_auc,
)

probabilities = st.lists(
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]) | st.floats(0, 1), min_size=2, max_size=30
)


def _pairs_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Every (positive, negative) pair counted by brute force (ties one half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def _expected_pairs_auc(p: np.ndarray) -> float | None:
    """E[right pairs] / E[pairs], summed over i != j by brute force."""
    q = 1 - p
    n = p.size
    off = ~np.eye(n, dtype=bool)
    weight = p[:, None] * q[None, :] * off
    right = (weight * (p[:, None] > p[None, :])).sum() + 0.5 * (
        weight * (p[:, None] == p[None, :])
    ).sum()
    total = weight.sum()
    return None if total <= 1e-15 else float(right / total)


@settings(max_examples=80, deadline=None)
@given(probabilities, st.integers(0, 2**31))
def test_realized_auc_is_the_pair_count(values: list[float], seed: int) -> None:
    scores = np.round(np.asarray(values), 3)
    labels = np.random.default_rng(seed).integers(0, 2, scores.size).astype(float)
    got = roc_auc(scores, labels)
    if labels.min() == labels.max():
        assert got is None
    else:
        assert got == pytest.approx(_pairs_auc(scores, labels), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(probabilities)
def test_expected_auc_is_the_expected_pair_count(values: list[float]) -> None:
    p = np.round(np.asarray(values), 3)
    want = _expected_pairs_auc(p)
    got = expected_roc_auc(p)
    assert (got is None) == (want is None)
    if want is not None:
        assert got == pytest.approx(want, abs=1e-12)


def test_realized_auc_agrees_with_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    rng = np.random.default_rng(3)
    p = np.round(rng.random(5000), 2)  # many ties
    y = (rng.random(5000) < p).astype(float)
    got = realized_binary(p, y, threshold=0.4)
    assert got.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert got.accuracy == pytest.approx(accuracy_score(y, p >= 0.4))
    assert got.log_loss == pytest.approx(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)), rel=1e-9)


def _simulate(
    seed: int, n: int, *, shift: float = 0.0, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated model: P(y=1 | x) = sigmoid(-1 + 1.5 x), the model outputs exactly it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, scale, n)
    p = 1 / (1 + np.exp(-(-1.0 + 1.5 * x)))
    y = (rng.random(n) < p).astype(float)
    return p, y


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shift", [0.0, 0.8])
def test_the_estimate_of_a_calibrated_model_matches_the_realized_metrics(
    seed: int, shift: float
) -> None:
    """Under no shift and under covariate shift (x moves, P(y | x) does not) alike; the
    tolerances are about 5 standard errors of the realized metrics at n = 20,000."""
    p, y = _simulate(seed, 20_000, shift=shift)
    estimate = estimate_binary(p)
    realized = realized_binary(p, y)
    assert estimate.accuracy == pytest.approx(realized.accuracy, abs=0.016)
    assert estimate.roc_auc == pytest.approx(realized.roc_auc, abs=0.02)
    assert estimate.positive_rate == pytest.approx(realized.positive_rate, abs=0.016)
    assert estimate.accuracy == pytest.approx(expected_accuracy(p))


def test_covariate_shift_moves_the_estimate_with_the_realized_metric() -> None:
    p0, y0 = _simulate(11, 20_000)
    p1, y1 = _simulate(12, 20_000, shift=0.5, scale=0.4)  # narrower inputs: harder to rank
    drop = realized_binary(p1, y1).roc_auc - realized_binary(p0, y0).roc_auc  # type: ignore[operator]
    estimated = estimate_binary(p1).roc_auc - estimate_binary(p0).roc_auc  # type: ignore[operator]
    assert drop < -0.05 and estimated == pytest.approx(drop, abs=0.02)


def test_a_calibration_fitted_on_labelled_rows_repairs_an_overconfident_model() -> None:
    p, y = _simulate(21, 40_000)
    logit = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-3 * logit))
    labelled, pending = slice(0, 10_000), slice(10_000, None)
    realized = realized_binary(overconfident[pending], y[pending])
    naive = estimate_binary(overconfident[pending])
    calibration = fit_calibration(overconfident[labelled], y[labelled])
    assert calibration is not None
    repaired = estimate_binary(overconfident[pending], calibration=calibration)
    assert abs(naive.accuracy - realized.accuracy) > 0.04
    assert repaired.accuracy == pytest.approx(realized.accuracy, abs=0.015)
    assert repaired.roc_auc == pytest.approx(realized.roc_auc, abs=0.02)
    assert repaired.calibrated and not naive.calibrated


def test_too_few_labels_fit_no_calibration_and_bad_input_is_named() -> None:
    assert fit_calibration([0.2, 0.8], [0, 1]) is None
    assert fit_calibration(np.full(500, 0.3), np.zeros(500)) is None
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        estimate_binary([0.5, 1.5])
    with pytest.raises(InvalidInputError, match="0 or 1"):
        realized_binary([0.5, 0.5], [0, 2])
    with pytest.raises(InvalidInputError, match="no predictions"):
        estimate_binary([])
    assert expected_roc_auc([1.0, 1.0]) is None
