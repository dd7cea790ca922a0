"""The one number per prediction that monitors follow: a binary classifier's positive
probability, else the first output's first column (a regression's value)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PROBABILITIES = "probabilities"


def score_vector(outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, bool] | None:
    """(scores, binary) of a model's named outputs (rows first); None without outputs.

    ``binary``: the scores are a two-class model's probability of class 1, so labels are
    0/1 and accuracy, ROC AUC and CBPE apply. A multi-class model is followed by its
    most likely class.
    """
    if not outputs:
        return None
    name = PROBABILITIES if PROBABILITIES in outputs else next(iter(outputs))
    matrix = np.asarray(outputs[name], dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.shape[1] == 2:
        return np.ascontiguousarray(matrix[:, 1]), True
    if matrix.shape[1] > 2:
        return matrix.argmax(axis=1).astype(np.float64), False
    return np.ascontiguousarray(matrix[:, 0]), False
