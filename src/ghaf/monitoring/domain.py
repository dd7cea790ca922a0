"""Multivariate drift: train a small classifier to tell reference rows from current rows.

If the windows come from one distribution no classifier beats chance, so its held-out AUC
is compared with the AUCs the same held-out scores get under random relabelling (a
permutation test: with the model fixed, shuffling the held-out labels is exactly the
no-drift case). The features carrying the model's gain name the columns that drive it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.monitoring.base import DomainResult
from ghaf.monitoring.profile import Profile

ROWS_PER_SIDE = 10_000
PERMUTATIONS = 200
MIN_ROWS = 50


def _features(
    reference: Profile, current: Profile, rows: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, list[str], list[int]]:
    names: list[str] = []
    categorical: list[int] = []
    blocks: list[np.ndarray] = []
    for name, summary in reference.columns.items():
        other = current.columns.get(name)
        if other is None or other.kind != summary.kind or summary.kind == "other":
            continue
        left = reference.sample.column(name).take(pa.array(rows[0]))
        right = current.sample.column(name).take(pa.array(rows[1]))
        joined = pa.concat_arrays([left.combine_chunks(), right.combine_chunks()])
        if summary.kind == "numeric":
            values = joined.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            codes = pc.dictionary_encode(joined).indices
            values = pc.cast(codes, pa.float64()).to_numpy(zero_copy_only=False)
            categorical.append(len(names))
        names.append(name)
        blocks.append(values)
    matrix = np.column_stack(blocks) if blocks else np.zeros((0, 0))
    return matrix, names, categorical


def _auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AUC of ``scores`` for each row of a 2-D 0/1 ``labels`` array (Mann-Whitney, tied ranks)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    positives = labels.sum(axis=-1)
    negatives = labels.shape[-1] - positives
    rank_sum = labels @ ranks
    out: np.ndarray = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    return out


def domain_classifier(
    reference: Profile, current: Profile, *, alpha: float = 0.05, seed: int = 0
) -> DomainResult:
    """Held-out AUC of a small LightGBM model separating the windows, with a permutation test."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    n_ref = min(ROWS_PER_SIDE, reference.sample.num_rows)
    n_cur = min(ROWS_PER_SIDE, current.sample.num_rows)
    if min(n_ref, n_cur) < MIN_ROWS:
        return DomainResult(0.5, 1.0, 1.0, False, n_ref + n_cur, [], "too few rows to train on")
    rows = (
        np.sort(rng.choice(reference.sample.num_rows, n_ref, replace=False)),
        np.sort(rng.choice(current.sample.num_rows, n_cur, replace=False)),
    )
    x, names, categorical = _features(reference, current, rows)
    if not names:
        return DomainResult(0.5, 1.0, 1.0, False, 0, [], "no column to compare")
    y = np.concatenate([np.zeros(n_ref), np.ones(n_cur)])
    train = rng.random(y.size) < 0.5
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "min_data_in_leaf": 40,
        "verbose": -1,
        "num_threads": 2,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
    }
    dataset = lgb.Dataset(
        x[train], y[train], feature_name=names, categorical_feature=categorical, free_raw_data=True
    )
    model = lgb.train(params, dataset, num_boost_round=60)
    scores = np.asarray(model.predict(x[~train]), dtype=np.float64)
    held = y[~train]
    auc = float(_auc(scores, held[None, :])[0])
    shuffled = np.tile(held, (PERMUTATIONS, 1))
    shuffled = rng.permuted(shuffled, axis=1)
    null = _auc(scores, shuffled)
    threshold = float(np.quantile(null, 1 - alpha))
    p_value = float((1 + np.sum(null >= auc)) / (1 + PERMUTATIONS))
    gain = np.asarray(model.feature_importance(importance_type="gain"), dtype=np.float64)
    share = gain / gain.sum() if gain.sum() > 0 else gain
    top = [(names[i], round(float(share[i]), 4)) for i in np.argsort(-share)[:5] if share[i] > 0]
    drifted = auc > threshold and p_value <= alpha
    return DomainResult(round(auc, 4), round(threshold, 4), p_value, drifted, int(y.size), top)
