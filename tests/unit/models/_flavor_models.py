"""Model code referenced by entry point from the flavor tests (code by reference)."""

from __future__ import annotations

from typing import Any

import numpy as np


def build_net(n_in: int = 4, n_out: int = 2) -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_out))


class LinearScorer:
    """A hand-written model: score = x @ w + b."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.w = np.asarray(payload["w"])
        self.b = float(payload["b"])

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype=float) @ self.w + self.b


def build_linear(payload: dict[str, Any]) -> LinearScorer:
    return LinearScorer(payload)
