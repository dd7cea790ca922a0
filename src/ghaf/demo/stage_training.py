"""Demo stage: the training pipeline (ghaf.demo.training_pipeline) as a recorded run on the
local executor: feature join -> LightGBM -> evaluation with fairness over gender and age
band -> gate -> register; then the second person approves (four eyes, outside the run)."""

from __future__ import annotations

from typing import Any

from ghaf.demo.runner import DemoContext
from ghaf.errors import InvalidInputError, UserCodeError


def _sources(ctx: DemoContext) -> tuple[str, str]:
    """The training set (the feature store's, else the raw transactions) and the customers."""
    datasets = ctx.results.get("datasets") or {}
    if "customers" not in datasets:
        raise InvalidInputError(
            "the training pipeline needs the ingested customers dataset",
            hint="run the 'ingest and validate' stage first",
        )
    customers = datasets["customers"].ref
    features = ctx.results.get("features") or {}
    ref = str(features.get("training_set", ""))
    if ref.startswith("dataset:"):
        return ref.removeprefix("dataset:"), customers
    if "transactions" in datasets:
        return datasets["transactions"].ref, customers
    raise InvalidInputError(
        "the training pipeline needs a training set or the transactions dataset",
        hint="run the 'features' stage first",
    )


def train_gate_register(ctx: DemoContext) -> str:
    from ghaf.demo.stage_registry import _approve
    from ghaf.demo.training_pipeline import MODEL, training_pipeline
    from ghaf.pipelines import output_of, run_pipeline
    from ghaf.pipelines.local import LocalExecutor
    from ghaf.registry import get_model_version

    platform = ctx.platform
    training_set, customers = _sources(ctx)
    executor = LocalExecutor()
    try:
        run = run_pipeline(
            platform,
            platform.admin(),
            training_pipeline(),
            params={"training_set": training_set, "customers": customers, "model": MODEL},
            executor=executor,
        )
    finally:
        executor.close()
    ctx.results["training_pipeline_run"] = run.id
    steps = " -> ".join(
        s.step if s.status == "succeeded" else f"{s.step} ({s.status})" for s in run.steps
    )
    head = f"pipeline {run.pipeline} run {run.id[:8]} {run.status}: {steps}"
    if run.status != "succeeded":
        if run.step("gate").status == "failed":
            return f"{head}: {run.step('gate').error}; not registered"
        raise UserCodeError(
            f"training pipeline run {run.id} {run.status}: {run.error}",
            hint=f"ghaf pipelines logs {run.id[:12]}",
        )
    trained = output_of(platform, run, "train")
    flat = _flat(output_of(platform, run, "evaluate"))
    registered = output_of(platform, run, "register")
    _approve(platform, registered["ref"])
    final = get_model_version(platform, registered["ref"])
    parity = {
        k.split(".")[1]: v for k, v in flat.items() if k.endswith("demographic_parity_difference")
    }
    ctx.results["retrained_model"] = final
    return (
        f"{head}; {len(trained['features'])} features from {training_set}; "
        f"run {trained['run_id'][:8]} auc={flat.get('auc', float('nan')):.3f} "
        f"cost={trained['cost']:.6f}; gate passed; "
        f"parity diff {', '.join(f'{k}={v:.3f}' for k, v in sorted(parity.items()))}; "
        f"{final.ref} approved by {', '.join(final.approvals)}"
    )


def _flat(report: dict[str, Any]) -> dict[str, float]:
    from ghaf.evaluation.evaluate import Evaluation

    return Evaluation(**report).flat_metrics()
