"""ONNX Runtime, the CPU-optimized path: conversion, parity check, optional int8 quantization."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ghaf.errors import IntegrityError, MissingDependencyError
from ghaf.serving.base import Array, Runtime, Signature, TensorSpec, as_matrix
from ghaf.serving.runtimes import find_model_file
from ghaf.serving.runtimes._tabular import column_of, warm

PARITY_TOLERANCE = 1e-4
"""Largest absolute difference allowed between ONNX and native outputs (float32 trees)."""


class OnnxRuntime:
    """An ``onnxruntime.InferenceSession`` with all graph optimizations on."""

    flavor = "onnx"

    def __init__(self, session: Any, signature: Signature | None) -> None:
        self.session = session
        first = session.get_inputs()[0]
        self._input = first.name
        n_features = int(first.shape[-1]) if isinstance(first.shape[-1], int) else 0
        wanted = [out.name for out in session.get_outputs()]
        # Classifier graphs from skl2onnx give ("label", "probabilities"): serve the scores.
        self._outputs = [name for name in wanted if name != "label"] or wanted
        outs = tuple(TensorSpec(name, "FP64", (-1, -1)) for name in self._outputs)
        if signature is not None and signature.inputs:
            self.signature = Signature(
                signature.inputs, signature.outputs or outs, signature.columns
            )
        else:
            self.signature = Signature.tabular([f"f{i}" for i in range(n_features)], outputs=outs)

    @classmethod
    def load(
        cls,
        model_dir: Path,
        signature: Signature | None = None,
        *,
        allowed_files: list[str] | None = None,
        threads: int = 1,
        **_options: Any,
    ) -> OnnxRuntime:
        path = find_model_file(model_dir, (".onnx",), allowed_files)
        return cls(open_session(path, threads), signature)

    def predict(self, batch: Array) -> dict[str, Array]:
        rows = as_matrix(batch, self.signature.n_features, "float32")
        results = self.session.run(self._outputs, {self._input: rows})
        return {
            name: column_of(np.asarray(value, dtype=np.float64))
            for name, value in zip(self._outputs, results, strict=True)
        }

    def warmup(self) -> None:
        warm(self)


def open_session(path: Path, threads: int = 1) -> Any:
    """An inference session with full graph optimization and ``threads`` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", "ml") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def convert_sklearn(model: Any, n_features: int, dest: Path, *, quantize: bool = False) -> Path:
    """Convert a scikit-learn estimator to ``dest`` (ONNX, float32 input, no ZipMap).

    ``quantize`` applies dynamic int8 quantization (helps MatMul-heavy models such as
    MLPs; tree ensembles have nothing to quantize).
    """
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        raise MissingDependencyError("skl2onnx", "ml") from exc
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    with _int_missing_flags():
        onx = to_onnx(
            model,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            options=options,
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(onx.SerializeToString())
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = dest.with_suffix(".int8.onnx")
        quantize_dynamic(str(dest), str(quantized), weight_type=QuantType.QInt8)
        quantized.replace(dest)
    return dest


@contextmanager
def _int_missing_flags() -> Iterator[None]:
    """skl2onnx 1.20 passes NumPy booleans as ``nodes_missing_value_tracks_true`` for
    HistGradientBoosting trees, which onnx 1.23 rejects (ints required): cast them."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(
                kwargs["nodes_missing_value_tracks_true"]
            )
        return original(*args, **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def check_parity(
    native: Runtime, candidate: Runtime, rows: Array, tolerance: float = PARITY_TOLERANCE
) -> float:
    """The largest absolute output difference on ``rows``; raises when above ``tolerance``.

    Raises:
        IntegrityError: the converted model disagrees with the native one.
    """
    want = native.predict(rows)
    got = candidate.predict(rows)
    worst = 0.0
    for (name, expected), actual in zip(want.items(), got.values(), strict=True):
        if expected.shape != actual.shape:
            raise IntegrityError(
                f"ONNX output {name!r} has shape {actual.shape}, native {expected.shape}",
                hint="convert with zipmap disabled and the same output layout",
            )
        worst = max(worst, float(np.max(np.abs(expected - actual))) if expected.size else 0.0)
    if worst > tolerance:
        raise IntegrityError(
            f"ONNX model differs from the native model by {worst:.3g} (> {tolerance:g})",
            hint="serve the native flavor, or raise the tolerance knowingly",
        )
    return worst
