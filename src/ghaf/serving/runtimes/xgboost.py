"""XGBoost boosters in their native UBJSON/JSON format, scored with ``inplace_predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ghaf.serving.base import Array, Signature, as_matrix
from ghaf.serving.runtimes import find_model_file
from ghaf.serving.runtimes._tabular import column_of, tabular_signature, warm


class XGBoostRuntime:
    """An ``xgboost.Booster``; ``binary:*`` objectives output [1-p, p] as ``probabilities``."""

    flavor = "xgboost"

    def __init__(self, booster: Any, signature: Signature | None, threads: int = 1) -> None:
        import json

        self.booster = booster
        booster.set_param({"nthread": threads})
        config = json.loads(booster.save_config())
        objective = str(config["learner"]["objective"]["name"])
        self._binary = objective.startswith("binary:")
        self._multi = objective.startswith("multi:")
        n_out = 2 if self._binary else int(config["learner"]["learner_model_param"]["num_class"])
        name = "probabilities" if (self._binary or self._multi) else "predictions"
        self.signature = tabular_signature(signature, booster.num_features(), max(n_out, 1), name)
        self._output = self.signature.outputs[0].name

    @classmethod
    def load(
        cls,
        model_dir: Path,
        signature: Signature | None = None,
        *,
        allowed_files: list[str] | None = None,
        threads: int = 1,
        **_options: Any,
    ) -> XGBoostRuntime:
        import xgboost

        path = find_model_file(model_dir, (".ubj", ".json"), allowed_files)
        booster = xgboost.Booster()
        booster.load_model(str(path))
        return cls(booster, signature, threads)

    def predict(self, batch: Array) -> dict[str, Array]:
        rows = as_matrix(batch, self.signature.n_features, "float32")
        scores = np.asarray(self.booster.inplace_predict(rows), dtype=np.float64)
        if self._binary:
            return {self._output: np.column_stack([1.0 - scores, scores])}
        return {self._output: column_of(scores)}

    def warmup(self) -> None:
        warm(self)
