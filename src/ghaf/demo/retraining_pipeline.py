"""The demo's retraining pipeline: what the closed loop runs when drift is detected on the
served fraud model. A fresh training set from the feature store up to ``until`` (the
transactions labelled by then, the last ``days`` of them, joined point in time with the
customer views) -> the training pipeline's join and LightGBM steps -> evaluation on the
held-out rows against the champion on the same rows (a paired bootstrap of the AUC) ->
a gate (an AUC floor, and not worse than the champion beyond ``max_regression`` at 95%)
-> register. The loop passes ``until`` and ``champion``; the policy the rest.

Declared in the demo home's settings (``pipelines``), so a retraining policy may name
``ghaf.demo.retraining_pipeline:PIPELINE``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.demo.training_pipeline import (
    MODEL,
    PARAMS,
    SENSITIVE,
    join_features,
    matrix,
    register_version,
    train_model,
)
from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.pipelines.context import current_step
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.step import step

PIPELINE_NAME = "fraud-retraining"
TARGET = "ghaf.demo.retraining_pipeline:PIPELINE"
TRANSACTIONS = ("transactions", "drift_transactions")
"""The labelled transaction datasets, by name (each read at its newest version)."""
RESAMPLES = 200
"""Paired bootstrap resamples of the AUC comparison with the champion."""


@step(cache=False)
def build_training_set(until: str, days: float, transactions: list[str]) -> str:
    """The labelled transactions of the ``days`` before ``until``, joined point in time
    with the fraud feature service and saved as a new version of the training set; its ref.

    Not cached: the feature store and the datasets move between runs.
    """
    from ghaf.data import get_dataset, read_dataset
    from ghaf.demo.stage_features import SERVICE, TRAINING_SET, TRANSACTION_COLUMNS, entity_frame
    from ghaf.features.retrieval import get_historical_features, save_training_set

    context = current_step()
    if not until:
        raise InvalidInputError("until is empty", hint="the loop passes it: the alert's time")
    end = datetime.fromisoformat(until)
    start = end - timedelta(days=float(days))
    parts = []
    for name in transactions:
        version = get_dataset(context.platform, name)
        table = read_dataset(
            context.platform, version.ref, columns=[*TRANSACTION_COLUMNS, "is_fraud"]
        )
        ts = table["event_ts"]
        keep = pc.and_(
            pc.greater_equal(ts, pa.scalar(start, ts.type)), pc.less(ts, pa.scalar(end, ts.type))
        )
        parts.append(table.filter(keep))
    labelled = pa.concat_tables(parts).sort_by("event_ts")
    if labelled.num_rows == 0:
        raise InvalidInputError(f"no labelled transaction between {start} and {end}")
    joined = get_historical_features(context.platform, entity_frame(labelled), SERVICE)
    saved = save_training_set(context.platform, context.actor, TRAINING_SET, joined, SERVICE)
    return str(saved.ref)


@step
def evaluate_against_champion(
    table: pa.Table, trained: dict[str, Any], champion: str, threshold_quantile: float,
    workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    """The candidate on the held-out rows, with fairness, and a paired bootstrap of its AUC
    against the champion's on the same rows (both models fetched, digests checked)."""
    from ghaf.evaluation.compare import bootstrap_compare
    from ghaf.evaluation.evaluate import evaluate
    from ghaf.models import load_model_dir
    from ghaf.registry import download_model, get_model_version
    from ghaf.tracking import download_artifacts

    platform = current_step().platform
    names = list(trained["features"])
    x, y = matrix(table, names)
    cut = int(trained["train_rows"])
    model = load_model_dir(download_artifacts(platform, trained["run_id"], "model", workdir))
    scores = model.predict_proba(x[cut:])[:, 1]
    champion_scores = None
    if champion:
        version = get_model_version(platform, champion)
        fields = [f["name"] for f in (version.signature or {}).get("inputs", {}).get("fields", [])]
        theirs, _ = matrix(table.slice(cut), fields or names)
        loaded = load_model_dir(download_model(platform, champion, workdir / "champion"))
        champion_scores = loaded.predict_proba(theirs)[:, 1]
    sensitive = {
        name: np.asarray(table[name].to_numpy(zero_copy_only=False)[cut:]) for name in SENSITIVE
    }
    evaluation = evaluate(
        y[cut:],
        scores,
        threshold=float(np.quantile(scores, threshold_quantile)),
        sensitive=sensitive,
    )
    if champion_scores is not None:
        # Fewer resamples than evaluate's 1,000: the interval's ends move by ~0.001 AUC,
        # a tenth of the margin the gate allows, at a fifth of the time.
        evaluation.comparison = bootstrap_compare(
            y[cut:], champion_scores, scores, metric="auc", resamples=RESAMPLES
        ).to_dict()
    report: dict[str, Any] = json.loads(evaluation.to_json())
    return report


@step
def gate_against_champion(
    evaluation: dict[str, Any], subject: str, champion: str, min_auc: float,
    max_regression: float,
) -> dict[str, Any]:  # fmt: skip
    """The gate: an AUC floor, and the AUC's improvement over the champion's (95% interval)
    above ``-max_regression``; fails the run (before registering) when a rule fails."""
    from ghaf.evaluation.evaluate import Evaluation
    from ghaf.evaluation.gates import GateEvidence, check_gate
    from ghaf.evaluation.policy import Bound, ChampionRule, GatePolicy

    policy = GatePolicy(
        name="fraud-retraining",
        metrics={"auc": Bound(min=min_auc)},
        champion=ChampionRule(metric="auc", min_improvement=-max_regression, confidence=0.95),
    )
    report = check_gate(policy, GateEvidence(subject=subject, evaluation=Evaluation(**evaluation)))
    comparison = evaluation.get("comparison") or {}
    summary = {
        "policy": policy.name,
        "passed": report.passed,
        "auc": evaluation.get("metrics", {}).get("auc"),
        "champion": champion or None,
        "champion_auc": comparison.get("champion"),
        "improvement": comparison.get("improvement"),
        "ci": [comparison.get("ci_low"), comparison.get("ci_high")],
        "results": [asdict(r) for r in report.results],
    }
    if not report.passed:
        reasons = "; ".join(r.reason for r in report.failures)
        raise PolicyViolationError(f"gate {policy.name} failed for {subject}: {reasons}")
    return summary


def retraining_pipeline(
    days: float = 45.0, min_auc: float = 0.75, max_regression: float = 0.02
) -> Pipeline:
    """training set up to ``until`` -> join -> train -> evaluate vs the champion -> gate ->
    register; every argument is a run parameter."""
    pipeline = Pipeline(
        PIPELINE_NAME,
        "a fresh training set from the feature store, LightGBM, evaluation against the "
        "champion, gate, register",
    )
    pipeline.param("deployment", "")
    training_set = pipeline.add(
        build_training_set,
        name="training_set",
        until=pipeline.param("until", ""),
        days=pipeline.param("days", days),
        transactions=pipeline.param("transactions", list(TRANSACTIONS)),
    )
    table = pipeline.add(
        join_features,
        name="join",
        training_set=training_set,
        customers=pipeline.param("customers", "customers"),
    )
    trained = pipeline.add(
        train_model,
        name="train",
        table=table,
        params=pipeline.param("params", PARAMS),
        seed=pipeline.param("seed", 7),
    )
    evaluation = pipeline.add(
        evaluate_against_champion,
        name="evaluate",
        table=table,
        trained=trained,
        champion=pipeline.param("champion", ""),
        threshold_quantile=0.98,
    )
    model = pipeline.param("model", MODEL)
    decision = pipeline.add(
        gate_against_champion,
        name="gate",
        evaluation=evaluation,
        subject=model,
        champion=pipeline.param("champion", ""),
        min_auc=pipeline.param("min_auc", min_auc),
        max_regression=pipeline.param("max_regression", max_regression),
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


PIPELINE = retraining_pipeline()
