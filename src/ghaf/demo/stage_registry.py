"""Demo stage: train a tracked LightGBM fraud model, register, sign, card, approve, champion."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.demo.runner import DemoContext
from ghaf.errors import AlreadyExistsError
from ghaf.platform import Platform

MODEL_NAME = "fraud"
APPROVER = "risk-officer"
COLUMNS = ("amount_aed", "hour", "online")
"""The serving stage serves these columns, in this order."""


def _features(table: pa.Table) -> pa.Table:
    return pa.table(
        {
            "amount_aed": pc.cast(table["amount_aed"], pa.float32()),
            "hour": pc.cast(table["hour"], pa.float32()),
            "online": pc.cast(pc.equal(table["channel"], "online"), pa.float32()),
        }
    )


def _parity_difference(flags: np.ndarray[Any, Any], group: np.ndarray[Any, Any]) -> float:
    rates = [float(flags[group == g].mean()) for g in np.unique(group) if (group == g).any()]
    return max(rates) - min(rates) if rates else 0.0


def _inputs(ctx: DemoContext) -> list[str]:
    dataset = (ctx.results.get("datasets") or {}).get("transactions")
    if dataset is None:
        return []
    return [f"dataset:{dataset.name}:{dataset.version}"]


def train_and_register(ctx: DemoContext) -> str:
    import lightgbm
    from sklearn.metrics import roc_auc_score

    from ghaf.registry import (
        get_model_version,
        register_model,
        set_alias,
        transition_model_version,
    )
    from ghaf.registry.card import render_html
    from ghaf.tracking import start_run

    platform, admin = ctx.platform, ctx.platform.admin()
    data = ctx.results["bank_data"]
    tx: pa.Table = data.transactions
    feats = _features(tx).to_pandas()
    labels = tx["is_fraud"].to_numpy(zero_copy_only=False).astype(int)
    cut = int(len(feats) * 0.8)  # time-ordered split: train on the past, validate on later days
    params: dict[str, Any] = {
        "n_estimators": 40,
        "learning_rate": 0.15,
        "num_leaves": 15,
        "min_child_samples": 50,
    }
    with start_run(
        "fraud-lgbm",
        platform=platform,
        experiment="fraud",
        params={**params, "features": ",".join(COLUMNS), "model": "lgbm"},
        tags={"team": "risk"},
        inputs=_inputs(ctx),
    ) as run:
        model = lightgbm.LGBMClassifier(**params, random_state=7, verbose=-1, n_jobs=2)
        model.fit(
            feats.iloc[:cut],
            labels[:cut],
            eval_X=(feats.iloc[cut:],),
            eval_y=(labels[cut:],),
            eval_metric="auc",
        )
        for name, series in model.evals_result_["valid_0"].items():
            for step, value in enumerate(series):
                run.log_metric(f"valid_{name}", value, step)
        scores = np.asarray(model.predict_proba(feats.iloc[cut:]))[:, 1]
        customers = data.customers
        gender_of = dict(
            zip(customers["customer_id"].to_pylist(), customers["gender"].to_pylist(), strict=True)
        )
        genders = np.asarray([gender_of[c] for c in tx["customer_id"].to_pylist()[cut:]])
        threshold = float(np.quantile(scores, 0.98))
        metrics = {
            "auc": float(roc_auc_score(labels[cut:], scores)),
            "demographic_parity_difference": _parity_difference(scores >= threshold, genders),
        }
        run.log_metrics(metrics)
        source = run.log_model(model, "model")
    example = pa.Table.from_pandas(feats.iloc[cut : cut + 5], preserve_index=False)
    version = register_model(
        platform,
        admin,
        MODEL_NAME,
        source,
        example=example,
        description="Scores card transactions for fraud review by the bank's risk team.",
    )
    transition_model_version(platform, admin, version.ref, "staging")
    _approve(platform, version.ref)
    transition_model_version(platform, admin, version.ref, "production")
    set_alias(platform, admin, MODEL_NAME, "champion", version.version)
    final = get_model_version(platform, f"{MODEL_NAME}@champion")
    card_path = ctx.workdir / "model_card.html"
    card_path.write_text(render_html(final.card, f"Model card: {final.ref}"))
    ctx.results["model"] = final
    ctx.results["model_run"] = run.run_id
    return (
        f"run {run.run_id[:8]} auc={metrics['auc']:.3f}; {final.ref} "
        f"{'signed' if final.signed else 'unsigned'}, approved by {_approvers(final)}, "
        f"{final.stage}, @champion; card {card_path.name}"
    )


def _approvers(version: Any) -> str:
    """Who approved, with the four-eyes evidence flag where the approval carries one."""
    return ", ".join(
        a.approver + (" (flagged: token minted by the author)" if a.flags else "")
        for a in version.approval_records
    )


def _approve(platform: Platform, ref: str) -> None:
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
