"""A tiny retraining pipeline for tests of the closed loop (importable by pipeline workers):
``fit -> gate -> register``. ``fit`` writes a one-node ONNX model (``y = x * weight``,
three float inputs); ``gate`` refuses a weight below ``min_weight``; ``register``
registers the model as the run's actor and answers ``{"ref": ...}`` (as the loop expects
of a retraining pipeline) with the ``until`` and ``champion`` the loop passed.

Declare it in the home's settings to name it in a policy:
``pipelines = ["ghaf.testing.retraining:PIPELINE"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.errors import PolicyViolationError
from ghaf.pipelines.context import current_step
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.step import step

TARGET = "ghaf.testing.retraining:PIPELINE"


def onnx_bytes(weight: float) -> bytes:
    """A one-node ONNX model: ``y = x * weight`` over three float columns."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [3], [weight] * 3)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


@step(cache=False)
def fit(weight: float, workdir: Path) -> Path:
    """The model directory."""
    from ghaf.models import save_model

    save_model(onnx_bytes(weight), workdir / "model")
    return workdir / "model"


@step(cache=False)
def check(weight: float, min_weight: float) -> dict[str, Any]:
    """The gate: fails the run (before registering) when the weight is below the bar."""
    if weight < min_weight:
        raise PolicyViolationError(f"gate toy failed: weight {weight:g} < {min_weight:g}")
    return {"policy": "toy", "passed": True, "weight": weight}


@step(cache=False)
def register(
    model_dir: Path, decision: dict[str, Any], model: str, until: str, champion: str
) -> dict[str, Any]:
    """Register the fitted model as the run's actor."""
    from ghaf.registry import register_model

    context = current_step()
    version = register_model(
        context.platform, context.actor, model, model_dir, description="retrained by the loop"
    )
    return {"ref": version.ref, "gate": decision["policy"], "until": until, "champion": champion}


def retraining_pipeline(model: str = "fraud", weight: float = 2.0) -> Pipeline:
    """fit -> gate -> register; ``until``, ``champion`` and ``deployment`` are the loop's."""
    pipeline = Pipeline("toy-retraining", "fit a tiny model, gate it, register it")
    pipeline.param("deployment", "")
    fitted = pipeline.add(fit, weight=pipeline.param("weight", weight))
    decision = pipeline.add(
        check,
        name="gate",
        weight=pipeline.param("weight", weight),
        min_weight=pipeline.param("min_weight", 0.0),
    )
    pipeline.add(
        register,
        model_dir=fitted,
        decision=decision,
        model=pipeline.param("model", model),
        until=pipeline.param("until", ""),
        champion=pipeline.param("champion", ""),
    )
    return pipeline


PIPELINE = retraining_pipeline()
