"""The demo's training pipeline: the feature store's training set joined with the
customers' sensitive attributes -> LightGBM -> evaluation with fairness over gender and
age band -> gate -> register, each a step. It makes the champion, and a retraining
trigger runs it again on a fresh training set.

As a pipeline, the run, its step runs, their outputs and their lineage are recorded, and a
re-run with nothing changed is served from the cache. Steps that act on the platform do so
through the run's context (the runner's home and actor), never a home or user parameter.
The four-eyes approval stays outside: the registrant cannot approve its own version.

``ghaf pipelines run ghaf.demo.training_pipeline:PIPELINE`` runs it on a home holding the
demo's data and features.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.pipelines.context import current_step
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.step import step

MODEL = "fraud"
PIPELINE_NAME = "fraud-training"
SENSITIVE = ("gender", "age_band")
"""Customer attributes joined for fairness; never features."""
SOURCES = b"ghaf.sources"
"""Schema metadata key of the joined table: the dataset versions it was read from."""
EXAMPLE_ROWS = 5
"""Held-out rows the registered version's signature is inferred from."""
VALID_SHARE = 0.2
"""The latest rows (the training set is in time order) are held out for evaluation."""
PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 200,
}
_SKIP = {"customer_id", "event_ts", "is_fraud", "tx_id", "transaction_id", "created_ts"}


def feature_names(table: pa.Table) -> list[str]:
    """Numeric columns that are neither keys, times, the label nor sensitive attributes."""
    skip = _SKIP | set(SENSITIVE)
    return [
        field.name
        for field in table.schema
        if field.name not in skip
        and (pa.types.is_integer(field.type) or pa.types.is_floating(field.type))
    ]


def matrix(table: pa.Table, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features as float32 (missing -> 0) and the label as int64."""
    frame = table.select([*names, "is_fraud"]).to_pandas()
    x = np.nan_to_num(frame[names].to_numpy(dtype=np.float32), nan=0.0)
    return x, frame["is_fraud"].to_numpy().astype(np.int64)


def split_at(rows: int) -> int:
    """Rows before this index train; the rest validate."""
    return int(rows * (1 - VALID_SHARE))


def sources_of(table: pa.Table) -> list[str]:
    """The dataset version nodes the join step recorded on ``table``."""
    raw = (table.schema.metadata or {}).get(SOURCES)
    return list(json.loads(raw)) if raw else []


@step(cache=False)
def join_features(training_set: str, customers: str) -> pa.Table:
    """The feature store's training set joined with each customer's gender and age band.

    Not cached: the refs may name a dataset's newest version, which moves; the steps after
    it are cached on the digest of what it read.
    """
    from ghaf.data import get_dataset, read_dataset

    platform = current_step().platform
    rows_version = get_dataset(platform, training_set)
    people_version = get_dataset(platform, customers)
    table = read_dataset(platform, rows_version.ref)
    missing = {"customer_id", "is_fraud"} - set(table.column_names)
    if missing:
        raise InvalidInputError(
            f"{rows_version.ref} has no column {sorted(missing)[0]!r}",
            hint="pass a training set with customer_id and is_fraud",
        )
    people = read_dataset(platform, people_version.ref, columns=["customer_id", *SENSITIVE])
    index = pc.index_in(table["customer_id"], value_set=people["customer_id"].combine_chunks())
    if index.null_count:
        raise InvalidInputError(
            f"{index.null_count} rows of {rows_version.ref} name customers "
            f"missing from {people_version.ref}",
            hint="join against the customers version the training set was built from",
        )
    for name in SENSITIVE:
        table = table.append_column(name, pc.take(people[name], index))
    nodes = json.dumps([rows_version.node, people_version.node]).encode()
    return table.replace_schema_metadata({**(table.schema.metadata or {}), SOURCES: nodes})


@step
def train_model(table: pa.Table, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """LightGBM as a tracked run whose inputs are the joined datasets and this step run."""
    from ghaf.training import TrainData, TrainSpec, train

    context = current_step()
    names = feature_names(table)
    x, y = matrix(table, names)
    cut = split_at(len(x))
    data = TrainData(x[:cut], y[:cut], x[cut:], y[cut:], tuple(names))
    spec = TrainSpec(
        "lightgbm", params=params, seed=seed, device="cpu", experiment="fraud",
        name="fraud-train", log_model=True, inputs=[*sources_of(table), context.node],
    )  # fmt: skip
    result = train(spec, data, platform=context.platform, actor=context.actor)
    example = table.slice(cut, EXAMPLE_ROWS).select(names)
    return {
        "run_id": result.run_id,
        "model_source": result.model_source,
        "features": names,
        "train_rows": cut,
        "valid_rows": len(x) - cut,
        "metrics": result.metrics,
        "cost": result.cost,
        "device": result.device,
        "example": {name: example[name].to_pylist() for name in names},
        "sources": sources_of(table),
    }


@step
def evaluate_model(
    table: pa.Table, trained: dict[str, Any], threshold_quantile: float, workdir: Path
) -> dict[str, Any]:
    """The logged model (fetched, digests checked) on the held-out rows, with fairness."""
    from ghaf.evaluation.evaluate import evaluate
    from ghaf.models import load_model_dir
    from ghaf.tracking import download_artifacts

    platform = current_step().platform
    x, y = matrix(table, list(trained["features"]))
    cut = int(trained["train_rows"])
    model = load_model_dir(download_artifacts(platform, trained["run_id"], "model", workdir))
    scores = model.predict_proba(x[cut:])[:, 1]
    sensitive = {
        name: np.asarray(table[name].to_numpy(zero_copy_only=False)[cut:]) for name in SENSITIVE
    }
    evaluation = evaluate(
        y[cut:],
        scores,
        threshold=float(np.quantile(scores, threshold_quantile)),
        sensitive=sensitive,
    )
    report: dict[str, Any] = json.loads(evaluation.to_json())
    return report


@step
def gate_model(evaluation: dict[str, Any], subject: str, min_auc: float) -> dict[str, Any]:
    """The gate: fails the step (and so the run, before registering) when a rule fails."""
    from ghaf.evaluation.evaluate import Evaluation
    from ghaf.evaluation.gates import GateEvidence, check_gate
    from ghaf.evaluation.policy import Bound, GatePolicy

    policy = GatePolicy(name="fraud-auc", metrics={"auc": Bound(min=min_auc)})
    report = check_gate(policy, GateEvidence(subject=subject, evaluation=Evaluation(**evaluation)))
    if not report.passed:
        reasons = "; ".join(r.reason for r in report.failures)
        raise PolicyViolationError(f"gate {policy.name} failed for {subject}: {reasons}")
    return {"policy": policy.name, "passed": True, "results": [asdict(r) for r in report.results]}


@step
def register_version(
    trained: dict[str, Any], evaluation: dict[str, Any], decision: dict[str, Any], model: str
) -> dict[str, Any]:
    """Register the trained run's model through the registry, as the run's actor.

    Its signature names the features in the order the model takes them (from a few
    held-out rows), and its lineage names the training set (the join's first source) first:
    monitoring takes a version's training profile from the first dataset of its lineage.
    Its metrics are the run's and the held-out evaluation's, fairness included (the
    model card shows them).
    """
    from ghaf.evaluation.evaluate import Evaluation
    from ghaf.registry import register_model

    if not decision.get("passed"):
        raise PolicyViolationError(f"gate {decision.get('policy')} did not pass; not registering")
    context = current_step()
    example = pa.table(
        {name: pa.array(trained["example"][name], pa.float32()) for name in trained["features"]}
    )
    version = register_model(
        context.platform, context.actor, model, str(trained["model_source"]),
        example=example, lineage=list(trained["sources"])[:1],
        metrics={**trained["metrics"], **Evaluation(**evaluation).flat_metrics()},
        description="Scores card transactions for fraud review by the bank's risk team "
        "(trained by the fraud-training pipeline on the feature store's training set).",
    )  # fmt: skip
    return {"ref": version.ref, "name": version.name, "version": version.version}


def training_pipeline(
    training_set: str = "fraud_training", customers: str = "customers", min_auc: float = 0.75
) -> Pipeline:
    """join -> train -> evaluate -> gate -> register; every argument is a run parameter."""
    pipeline = Pipeline(
        PIPELINE_NAME, "feature join, LightGBM, evaluation with fairness, gate, register"
    )
    table = pipeline.add(
        join_features,
        name="join",
        training_set=pipeline.param("training_set", training_set),
        customers=pipeline.param("customers", customers),
    )
    trained = pipeline.add(
        train_model,
        name="train",
        table=table,
        params=pipeline.param("params", PARAMS),
        seed=pipeline.param("seed", 7),
    )
    evaluation = pipeline.add(
        evaluate_model, name="evaluate", table=table, trained=trained, threshold_quantile=0.98
    )
    model = pipeline.param("model", MODEL)
    decision = pipeline.add(
        gate_model,
        name="gate",
        evaluation=evaluation,
        subject=model,
        min_auc=pipeline.param("min_auc", min_auc),
    )
    pipeline.add(
        register_version,
        name="register",
        trained=trained,
        evaluation=evaluation,
        decision=decision,
        model=model,
    )
    return pipeline


PIPELINE = training_pipeline()
