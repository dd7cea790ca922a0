"""Demo stage: the champion. The training pipeline (ghaf.demo.training_pipeline) runs on the
feature store's training set as a recorded run on the local executor; the version it
registers is approved by a second person (four eyes, outside the run), moved to
production and made ``@champion``. Its held-out AUC is reported beside the oracle's: the
AUC of the generator's true fraud probabilities on the same rows."""

from __future__ import annotations

import contextlib

import numpy as np

from ghaf.demo.bank_data import BankData
from ghaf.demo.runner import DemoEnv
from ghaf.demo.state import Champion, Datasets, FeatureSet
from ghaf.errors import AlreadyExistsError, UserCodeError
from ghaf.platform import Platform

APPROVER = "risk-officer"
MIN_AUC = 0.75
"""The gate: a fraud model the bank would use ranks a fraud above a normal transaction
three times in four at least."""


def train_champion(
    env: DemoEnv,
    data: BankData,
    datasets: Datasets,
    features: FeatureSet,
    *,
    min_auc: float = MIN_AUC,
) -> Champion:
    """Run the pipeline on ``features.training_set``; approve, promote and crown its version.

    Raises:
        UserCodeError: the run failed (the gate's reason when the gate refused it).
    """
    from ghaf.data import read_dataset
    from ghaf.demo.training_pipeline import MODEL, split_at, training_pipeline
    from ghaf.evaluation.evaluate import Evaluation
    from ghaf.monitoring.cbpe import roc_auc
    from ghaf.pipelines import output_of, run_pipeline
    from ghaf.pipelines.local import LocalExecutor
    from ghaf.registry import get_model_version, set_alias, transition_model_version
    from ghaf.registry.card import render_html

    platform, admin = env.platform, env.platform.admin()
    executor = LocalExecutor()
    try:
        run = run_pipeline(
            platform,
            admin,
            training_pipeline(),
            params={
                "training_set": features.training_set.ref,
                "customers": datasets.customers.ref,
                "model": MODEL,
                "min_auc": min_auc,
            },
            executor=executor,
        )
    finally:
        executor.close()
    if run.status != "succeeded":
        failed = next((s for s in run.steps if s.status == "failed"), None)
        raise UserCodeError(
            f"training pipeline run {run.id} {run.status}: "
            f"{failed.error if failed is not None else run.error}",
            hint=f"ghaf pipelines logs {run.id[:12]}",
        )
    trained = output_of(platform, run, "train")
    evaluation = Evaluation(**output_of(platform, run, "evaluate"))
    flat = evaluation.flat_metrics()
    ref = output_of(platform, run, "register")["ref"]
    transition_model_version(platform, admin, ref, "staging")
    approve(platform, ref)
    transition_model_version(platform, admin, ref, "production")
    version = set_alias(
        platform, admin, MODEL, "champion", get_model_version(platform, ref).version
    )
    card = env.workdir / "model_card.html"
    card.write_text(render_html(version.card, f"Model card: {version.ref}"), encoding="utf-8")
    # The oracle on the rows the pipeline held out (the training set's latest rows).
    rows = read_dataset(platform, features.training_set.ref, columns=["tx_id", "is_fraud"])
    cut = split_at(rows.num_rows)
    held_out = rows.slice(cut)
    labels = held_out["is_fraud"].to_numpy(zero_copy_only=False).astype(np.float64)
    oracle = roc_auc(data.probability_of(held_out["tx_id"].to_numpy()), labels)
    parity = {
        k.split(".")[1]: v for k, v in flat.items() if k.endswith("demographic_parity_difference")
    }
    return Champion(
        version=version,
        pipeline_run=run.id,
        train_run=str(trained["run_id"]),
        features=tuple(trained["features"]),
        auc=float(flat.get("auc", float("nan"))),
        oracle_auc=float("nan") if oracle is None else oracle,
        valid_rows=held_out.num_rows,
        parity=parity,
        card=card,
    )


def approve(platform: Platform, ref: str) -> None:
    """The second person: the risk officer, acting with a token of their own (four eyes).

    On one laptop the home's owner mints every token, so an approval with one is
    evidence, not prevention: the demo's release policy accepts it flagged (the card and
    the audit record say so) instead of refusing it, as the default policy would.
    """
    from ghaf.access.bindings import bind_role
    from ghaf.access.tokens import create_token, verify_token
    from ghaf.registry import approve_model_version
    from ghaf.registry.release import DEFAULT_POLICY, set_release_policy

    admin = platform.admin()
    laptop_policy = DEFAULT_POLICY.replace(
        "self_minted_approvals: refuse", "self_minted_approvals: flag"
    )
    set_release_policy(platform, admin, platform.default_project, laptop_policy)
    with contextlib.suppress(AlreadyExistsError):
        bind_role(platform, admin, APPROVER, "model_approver", project="*")
    token = create_token(platform, admin, APPROVER, project=platform.default_project)
    officer = verify_token(platform, token.secret, source="demo")
    approve_model_version(platform, officer, ref, comment="reviewed card and metrics")
