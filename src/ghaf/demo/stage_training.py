"""Demo stage: a training pipeline: feature join -> LightGBM (ghaf.training) -> evaluation
with fairness over gender and age band -> gate -> register -> second-person approval."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ghaf.demo.runner import DemoContext

MODEL = "fraud-retrained"
_SKIP = {"customer_id", "event_ts", "is_fraud", "transaction_id", "created_ts"}


def _training_table(ctx: DemoContext) -> tuple[pa.Table, str]:
    """The feature store's training set when the features stage made one, else raw columns."""
    features = ctx.results.get("features") or {}
    ref = str(features.get("training_set", ""))
    if ref.startswith("dataset:"):
        from ghaf.data import read_dataset

        table = read_dataset(ctx.platform, ref.removeprefix("dataset:"))
        if "is_fraud" in table.column_names and "customer_id" in table.column_names:
            return table, ref
    tx: pa.Table = ctx.results["bank_data"].transactions
    return tx.select(["customer_id", "amount_aed", "hour", "is_fraud"]), "transactions"


def train_gate_register(ctx: DemoContext) -> str:
    from ghaf.demo.stage_registry import _approve
    from ghaf.evaluation.evaluate import evaluate
    from ghaf.evaluation.gates import GateEvidence, check_gate
    from ghaf.evaluation.policy import Bound, GatePolicy
    from ghaf.registry import get_model_version, register_model
    from ghaf.training import TrainData, TrainSpec, train

    platform, admin = ctx.platform, ctx.platform.admin()
    table, source = _training_table(ctx)
    frame = table.to_pandas()
    names = [c for c in frame.columns if c not in _SKIP and frame[c].dtype.kind in "fiub"]
    x = frame[names].to_numpy(dtype=np.float32)
    x = np.nan_to_num(x, nan=0.0)
    y = frame["is_fraud"].to_numpy().astype(np.int64)
    cut = int(len(x) * 0.8)
    data = TrainData(x[:cut], y[:cut], x[cut:], y[cut:], tuple(names))
    params: dict[str, Any] = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 50}
    inputs = [source] if source.startswith("dataset:") else []
    spec = TrainSpec(
        "lightgbm", params=params, seed=7, device="cpu", experiment="fraud",
        name="fraud-retrain", log_model=True, inputs=inputs,
    )  # fmt: skip
    result = train(spec, data, platform=platform, actor=admin)
    customers = ctx.results["bank_data"].customers
    ids = customers["customer_id"].to_pylist()
    gender = dict(zip(ids, customers["gender"].to_pylist(), strict=True))
    band = dict(zip(ids, customers["age_band"].to_pylist(), strict=True))
    who = frame["customer_id"].to_numpy()[cut:]
    scores = result.predict(data.x_valid)  # type: ignore[arg-type]
    evaluation = evaluate(
        data.y_valid,  # type: ignore[arg-type]
        scores,
        threshold=float(np.quantile(scores, 0.98)),
        sensitive={
            "gender": np.asarray([gender[c] for c in who]),
            "age_band": np.asarray([band[c] for c in who]),
        },
    )
    policy = GatePolicy(name="demo-retrain", metrics={"auc": Bound(min=0.6)})
    report = check_gate(policy, GateEvidence(subject=MODEL, evaluation=evaluation))
    if not report.passed:
        reasons = "; ".join(r.reason for r in report.failures)
        return f"run {result.run_id[:8]}: gate {policy.name} failed ({reasons}); not registered"
    version = register_model(
        platform, admin, MODEL, result.model_source or "",
        description="Retrained by the demo's training pipeline (gated).",
    )  # fmt: skip
    _approve(platform, version.ref)
    final = get_model_version(platform, version.ref)
    flat = evaluation.flat_metrics()
    parity = {
        k.split(".")[1]: v for k, v in flat.items() if k.endswith("demographic_parity_difference")
    }
    ctx.results["retrained_model"] = final
    return (
        f"{len(names)} features from {source}; run {result.run_id[:8]} "
        f"auc={flat.get('auc', float('nan')):.3f} cost={result.cost:.6f}; gate passed; "
        f"parity diff {', '.join(f'{k}={v:.3f}' for k, v in sorted(parity.items()))}; "
        f"{final.ref} approved by {', '.join(final.approvals)}"
    )
