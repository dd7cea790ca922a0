"""The demo's training stage is a recorded pipeline run: step runs, cache, gate, lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ghaf.data import ingest
from ghaf.data.contracts import contract_from_dict
from ghaf.demo.bank_data import generate_bank_data
from ghaf.demo.runner import DemoContext
from ghaf.demo.stage_data import CUSTOMERS, TRANSACTIONS
from ghaf.demo.stage_registry import APPROVER
from ghaf.demo.stage_training import train_gate_register
from ghaf.demo.training_pipeline import MODEL, training_pipeline
from ghaf.home import init_home
from ghaf.lineage import upstream
from ghaf.pipelines import get_run, output_of, run_pipeline
from ghaf.pipelines.local import LocalExecutor
from ghaf.registry import get_model_version
from ghaf.settings import load_settings
from ghaf.tracking import get_run as get_tracked_run

STEPS = ["join", "train", "evaluate", "gate", "register"]


@pytest.fixture
def demo(isolated_env: Path, tmp_path: Path) -> Iterator[DemoContext]:
    """A home in the demo's region holding small customers and transactions datasets."""
    settings = load_settings(home=isolated_env, artifact_region="ae-auh-1")
    with init_home(settings) as platform:
        ctx = DemoContext(settings, platform, tmp_path / "demo")
        data = generate_bank_data(seed=3, customers=1_000, transactions=12_000)
        paths = data.write(tmp_path / "raw")
        admin = platform.admin()
        ctx.results["bank_data"] = data
        ctx.results["datasets"] = {
            name: ingest(platform, admin, paths[name], name, contract=contract_from_dict(spec))
            for name, spec in (("customers", CUSTOMERS), ("transactions", TRANSACTIONS))
        }
        yield ctx


def test_the_stage_runs_the_pipeline_and_records_every_step(demo: DemoContext) -> None:
    platform = demo.platform
    summary = train_gate_register(demo)

    run = get_run(platform, demo.results["training_pipeline_run"])
    assert run.status == "succeeded", run.error
    assert run.pipeline == "fraud-retrain"
    assert run.created_by == platform.admin().name
    assert [s.step for s in run.steps] == STEPS
    assert {s.status for s in run.steps} == {"succeeded"}
    assert f"run {run.id[:8]} succeeded: join -> train -> evaluate -> gate -> register" in summary
    assert "approved by risk-officer" in summary

    trained = output_of(platform, run, "train")
    assert "amount_aed" in trained["features"] and "tx_id" not in trained["features"]
    evaluation = output_of(platform, run, "evaluate")
    assert set(evaluation["fairness"]) == {"gender", "age_band"}
    assert output_of(platform, run, "gate")["passed"] is True

    version = demo.results["retrained_model"]
    assert version.ref == output_of(platform, run, "register")["ref"]
    assert version.name == MODEL and version.run_id == trained["run_id"]
    assert version.created_by == platform.admin().name
    assert list(version.approvals) == [APPROVER]  # four eyes: not the registrant
    tracked = get_tracked_run(platform, trained["run_id"])
    assert f"run:{run.step('train').id}" in tracked.inputs
    nodes = upstream(platform, version.node)
    assert {f"run:{run.id}", f"run:{run.step('train').id}", f"run:{run.step('join').id}"} <= set(
        nodes
    )
    assert {"dataset:transactions:1", "dataset:customers:1"} <= set(nodes)

    params = {"training_set": "transactions:1", "customers": "customers:1"}
    executor = LocalExecutor()
    try:
        again = run_pipeline(
            platform, platform.admin(), training_pipeline(), params=params, executor=executor
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
