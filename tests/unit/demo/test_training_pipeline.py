"""The demo's champion: the training pipeline on the feature store's training set as a
recorded run (step runs, cache, gate, lineage), approved by a second person, made
``@champion``, its AUC reported beside the oracle's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ghaf.data import ingest, read_dataset
from ghaf.data.contracts import contract_from_dict
from ghaf.demo.bank_data import BankData, generate_bank_data
from ghaf.demo.runner import DemoEnv
from ghaf.demo.stage_data import CUSTOMERS, TRANSACTIONS
from ghaf.demo.stage_features import REQUEST_FIELDS, build_features
from ghaf.demo.stage_training import APPROVER, train_champion
from ghaf.demo.state import Datasets, FeatureSet
from ghaf.demo.training_pipeline import MODEL, PIPELINE_NAME, split_at, training_pipeline
from ghaf.home import init_home
from ghaf.lineage import upstream
from ghaf.monitoring.cbpe import roc_auc
from ghaf.pipelines import get_run, output_of, run_pipeline
from ghaf.pipelines.local import LocalExecutor
from ghaf.registry import get_model_version
from ghaf.settings import load_settings
from ghaf.tracking import get_run as get_tracked_run

STEPS = ["join", "train", "evaluate", "gate", "register"]


@pytest.fixture
def demo(
    isolated_env: Path, tmp_path: Path
) -> Iterator[tuple[DemoEnv, BankData, Datasets, FeatureSet]]:
    """A home in the demo's region with small ingested data and its feature store built."""
    settings = load_settings(home=isolated_env, artifact_region="ae-auh-1")
    with init_home(settings) as platform:
        env = DemoEnv(settings, platform, tmp_path / "demo")
        env.workdir.mkdir()
        data = generate_bank_data(seed=3, customers=1_000, transactions=20_000)
        paths = data.write(tmp_path / "raw")
        admin = platform.admin()
        contracts = {"customers": CUSTOMERS, "transactions": TRANSACTIONS}
        versions = [
            ingest(platform, admin, paths[name], name, contract=contract_from_dict(contracts[kind]))
            for name, kind in (
                ("customers", "customers"),
                ("transactions", "transactions"),
                ("drift_transactions", "transactions"),
            )
        ]
        datasets = Datasets(*versions, drift_warnings=())
        yield env, data, datasets, build_features(env, datasets)


def test_the_champion_is_trained_on_the_training_set_and_crowned(
    demo: tuple[DemoEnv, BankData, Datasets, FeatureSet],
) -> None:
    env, data, datasets, features = demo
    platform = env.platform
    champion = train_champion(env, data, datasets, features, min_auc=0.6)

    run = get_run(platform, champion.pipeline_run)
    assert run.status == "succeeded", run.error
    assert run.pipeline == PIPELINE_NAME
    assert run.created_by == platform.admin().name
    assert [s.step for s in run.steps] == STEPS
    assert {s.status for s in run.steps} == {"succeeded"}
    assert f"pipeline run {run.id[:8]}" in champion.summary
    assert "approved by risk-officer" in champion.summary

    trained = output_of(platform, run, "train")
    assert trained["features"] == [*REQUEST_FIELDS, *features.features]
    assert list(champion.features) == trained["features"]
    evaluation = output_of(platform, run, "evaluate")
    assert set(evaluation["fairness"]) == {"gender", "age_band"}
    assert output_of(platform, run, "gate")["passed"] is True

    version = champion.version
    assert version == get_model_version(platform, f"{MODEL}@champion")
    assert version.ref == output_of(platform, run, "register")["ref"]
    assert version.run_id == trained["run_id"] == champion.train_run
    assert version.stage == "production" and version.signed
    assert version.created_by == platform.admin().name
    assert list(version.approvals) == [APPROVER]  # four eyes: not the registrant
    assert [f["name"] for f in version.signature["inputs"]["fields"]] == trained["features"]
    assert "## Fairness" in version.card and "demographic_parity_difference" in version.card
    assert champion.card.read_text().startswith("<!doctype html>")

    # The data path, in lineage: version <- training set <- feature views <- datasets.
    assert version.lineage[0] == features.training_set.node
    tracked = get_tracked_run(platform, trained["run_id"])
    assert f"run:{run.step('train').id}" in tracked.inputs
    nodes = set(upstream(platform, version.node))
    assert {f"run:{run.id}", f"run:{run.step('train').id}", f"run:{run.step('join').id}"} <= nodes
    assert {
        features.training_set.node,
        *features.views,
        datasets.transactions.node,
        datasets.customers.node,
    } <= nodes

    # The oracle: the generator's true probabilities on the rows the pipeline held out.
    rows = read_dataset(platform, features.training_set.ref, columns=["tx_id", "is_fraud"])
    held_out = rows.slice(split_at(rows.num_rows))
    labels = held_out["is_fraud"].to_numpy(zero_copy_only=False).astype(np.float64)
    oracle = roc_auc(data.probability_of(held_out["tx_id"].to_numpy()), labels)
    assert champion.oracle_auc == pytest.approx(oracle)
    assert champion.valid_rows == held_out.num_rows == trained["valid_rows"]
    assert 0.6 <= champion.auc <= 1.0 and 0.6 <= champion.oracle_auc <= 1.0

    params = {"training_set": features.training_set.ref, "customers": datasets.customers.ref}
    executor = LocalExecutor()
    try:
        again = run_pipeline(
            platform,
            platform.admin(),
            training_pipeline(),
            params={**params, "min_auc": 0.6},
            executor=executor,
        )
        strict = run_pipeline(
            platform,
            platform.admin(),
            training_pipeline(),
            params={**params, "min_auc": 1.01},
            executor=executor,
        )
    finally:
        executor.close()
    assert again.status == "succeeded"
    assert again.executed == ["join"]  # the join reads; the rest is served from the cache
    assert output_of(platform, again, "register") == output_of(platform, run, "register")

    assert strict.status == "failed"
    assert strict.step("gate").status == "failed"
    assert "auc" in (strict.step("gate").error or "")
    assert strict.step("register").status == "skipped"
    assert get_model_version(platform, MODEL).version == version.version
