"""A hand-written model shipped as code inside its model directory: score = x @ w + b."""

import numpy as np


class LinearScorer:
    def __init__(self, payload):
        self.w = np.asarray(payload["w"])
        self.b = float(payload["b"])

    def predict(self, data):
        return np.asarray(data, dtype=float) @ self.w + self.b


def build(payload):
    return LinearScorer(payload)
