"""A tiny ONNX model (sigmoid of a linear map of two features), built with onnx.helper."""

from __future__ import annotations

from typing import Any

import numpy as np

WEIGHTS = np.array([[2.0], [-1.0]], dtype=np.float32)
BIAS = np.array([0.5], dtype=np.float32)


def tiny_onnx() -> Any:
    """A ModelProto: ``score = sigmoid(input @ WEIGHTS + BIAS)``, input float [N, 2]."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["score"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(WEIGHTS, "w"), numpy_helper.from_array(BIAS, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def expected(rows: np.ndarray) -> np.ndarray:
    """What the model answers for ``rows``, by NumPy."""
    return (1 / (1 + np.exp(-(rows @ WEIGHTS + BIAS)))).ravel()
