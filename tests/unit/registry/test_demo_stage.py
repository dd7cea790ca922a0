"""The demo's registry stage: tracked run, registered, signed, carded, approved, champion."""

from __future__ import annotations

import numpy as np
import pytest

from ghaf.demo.bank_data import BankData, generate_bank_data
from ghaf.demo.runner import DemoContext
from ghaf.demo.stage_registry import COLUMNS, train_and_register
from ghaf.platform import Platform
from ghaf.registry import get_model_version, load_model
from ghaf.tracking import get_run


@pytest.mark.slow
def test_registry_stage(platform: Platform) -> None:
    full = generate_bank_data(seed=7)
    data = BankData(full.customers, full.transactions.slice(0, 30_000), full.drift_transactions)
    ctx = DemoContext(platform.settings, platform, platform.settings.home / "demo")
    ctx.workdir.mkdir(parents=True)
    ctx.results["bank_data"] = data
    summary = train_and_register(ctx)
    version = ctx.results["model"]
    assert "@champion" in summary
    assert version == get_model_version(platform, "fraud@champion")
    assert version.stage == "production" and version.signed
    assert version.approvals == ("risk-officer",) and version.created_by != "risk-officer"
    assert [f["name"] for f in version.signature["inputs"]["fields"]] == list(COLUMNS)
    assert "## Fairness" in version.card and "demographic_parity_difference" in version.card
    run = get_run(platform, ctx.results["model_run"])
    assert run.params["model"] == "lgbm" and "auc" in run.metrics
    example = data.transactions.slice(0, 10)
    model = load_model(platform, "fraud@champion")
    from ghaf.demo.stage_registry import _features

    scores = model.predict_proba(_features(example))
    assert scores.shape == (10, 2) and np.all((scores >= 0) & (scores <= 1))
    assert (ctx.workdir / "model_card.html").read_text().startswith("<!doctype html>")
