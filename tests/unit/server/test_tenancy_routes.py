"""Projects as tenants where the services hold the rule, through ``ghaf server`` as a
real process: run listings filtered by project in the query (not within a window of
the newest runs), a deployment that serves only its own project's versions even for a
caller who may read both projects, and SQL transforms that read only the caller's
readable inputs and no file of the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, insert

from ghaf.client import Client
from ghaf.data import list_versions, read_dataset, write_dataset
from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.metadata.base import utcnow
from ghaf.models import save_model
from ghaf.pipelines.tables import PipelineRunRow
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.deployments import list_deployments
from ghaf.testing.people import mint, person
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
FRAUD_RUNS = 10_050
"""More runs of fraud than the newest-runs window the listing once looked through."""


@dataclass
class Served:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]

    def client(self, who: str) -> Client:
        return Client(self.server.url, self.tokens[who])

    def http(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(3).normal(size=(60, 3))
    saved = tmp_path / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), saved)
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
        here = platform.in_project(project)
        dana = person(platform, f"dana-{project}", ["data_scientist"], project=project)
        ben = person(platform, f"ben-{project}", ["model_approver"], project=project)
        register_model(here, dana, f"{project}-model", saved, project=project)
        approve_model_version(here, ben, f"{project}-model:1")
    write_dataset(
        platform.in_project("fraud"),
        platform.admin(),
        "tx",
        pa.table({"id": [1, 2, 3, 4], "amount": [5.0, 50.0, 500.0, 5000.0]}),
        source="test",
    )
    roles = ["data_scientist", "release_manager"]
    tokens = {
        "dora": mint(platform, "dora", ["data_engineer"], project="fraud", bind_on="fraud"),
        "rex": mint(platform, "rex", ["data_engineer"], project="retail", bind_on="retail"),
        "alice": mint(platform, "alice", roles, project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", roles, project="retail", bind_on="retail"),
        # Bound on every project: she reads fraud's models and deploys in retail.
        "olga": mint(platform, "olga", roles, project="*", bind_on="*"),
    }
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield Served(platform, server, tokens)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _record_runs(platform: Platform) -> None:
    """Runs as a busy fraud project leaves them: retail's one run is older than all."""
    start = utcnow() - timedelta(days=1)

    def row(i: int, project: str, trigger: str) -> dict[str, object]:
        return {
            "id": f"{i:032x}",
            "pipeline": "nightly",
            "project": project,
            "status": "succeeded",
            "executor": "local",
            "trigger": trigger,
            "params": "{}",
            "created_by": "test",
            "started_at": start + timedelta(seconds=i),
        }

    rows = [row(0, "retail", "cron:nightly")]
    rows += [row(i, "fraud", "cron:nightly" if i % 2 else "manual") for i in range(1, FRAUD_RUNS)]
    # Test data only, written beside the spine: a history too long to run here.
    engine = create_engine(platform.settings.resolved_metadata_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(PipelineRunRow), rows)
    finally:
        engine.dispose()


def test_run_listings_find_a_projects_runs_behind_another_projects_many(
    served: Served,
) -> None:
    _record_runs(served.platform)
    with served.http("rita") as rita:
        for params in ({}, {"fired": True}, {"trigger": "cron:nightly", "pipeline": "nightly"}):
            answer = rita.get("/pipeline-runs", params={**params, "limit": 5})
            assert answer.status_code == 200, answer.text
            assert [(r["id"], r["project"]) for r in answer.json()["runs"]] == [
                (f"{0:032x}", "retail")
            ], params
        assert rita.get("/pipeline-runs", params={"pipeline": "other"}).json() == {"runs": []}
    with served.http("alice") as alice:
        runs = alice.get("/pipeline-runs", params={"limit": 1000}).json()["runs"]
        assert len(runs) == 1000 and {r["project"] for r in runs} == {"fraud"}
        assert runs[0]["id"] == f"{FRAUD_RUNS - 1:032x}"  # newest first


def test_a_deployment_serves_only_its_own_projects_versions(served: Served) -> None:
    with served.http("olga") as olga:
        assert olga.get("/models/fraud-model:1").status_code == 200  # she may read it
        for body in (
            {"name": "shop", "project": "retail", "models": {"fraud-model:1": 1}},
            {
                "name": "shop",
                "project": "retail",
                "models": {"retail-model:1": 1},
                "shadow": "fraud-model:1",
            },
        ):
            refused = olga.post("/deployments", json=body)
            assert refused.status_code == 404, refused.text
            assert "does not exist in project 'retail'" in refused.json()["title"]
        made = olga.post(
            "/deployments",
            json={"name": "shop", "project": "retail", "models": {"retail-model:1": 1}},
        )
        assert made.status_code == 201, made.text
        changed = olga.patch("/deployments/shop", json={"models": {"fraud-model:1": 1}})
        assert changed.status_code == 404, changed.text
    with served.http("rita") as rita:  # fraud's model is not there for her at all
        hidden = rita.patch("/deployments/shop", json={"models": {"fraud-model:1": 1}})
        assert hidden.status_code == 404, hidden.text
        assert "fraud-model" in hidden.json()["title"]
    [shop] = list_deployments(served.platform)
    assert (shop.project, shop.models, shop.revision) == ("retail", {"retail-model:1": 1.0}, 1)


def test_a_sql_transform_runs_on_the_server_over_readable_inputs_only(served: Served) -> None:
    with served.client("dora") as dora:
        made = dora.run_transform(
            "big",
            {"t": "tx"},
            sql="SELECT id, amount FROM t WHERE amount > $floor ORDER BY id",
            project="fraud",
            params={"floor": 40},
        )
        assert (made["ref"], made["project"], made["inputs"]) == (
            "big:1",
            "fraud",
            ["dataset:tx:1"],
        )
        assert read_dataset(served.platform, "big:1").column("id").to_pylist() == [2, 3, 4]
        with pytest.raises(InvalidInputError, match=r"transform SQL failed.*disabled"):
            dora.run_transform(
                "leak", {"t": "tx"}, sql="SELECT * FROM read_text('/etc/hostname')", project="fraud"
            )
    with served.http("dora") as http:
        code = http.post(
            "/datasets/leak/transform",
            json={"project": "fraud", "inputs": {"t": "tx"}, "fn": "def f(t): ..."},
        )
        assert code.status_code == 400, code.text
        assert code.json()["errors"][0]["field"] == "fn"
        assert "caller's code" in code.json()["title"]
        for body, field in (
            ({"project": "fraud", "inputs": {}, "sql": "SELECT 1"}, "inputs"),
            ({"project": "fraud", "inputs": {"1t": "tx"}, "sql": "SELECT 1"}, "inputs"),
            ({"project": "fraud", "inputs": {"t": "../x"}, "sql": "SELECT 1"}, "inputs"),
            ({"project": "fraud", "inputs": {"t": "tx"}, "sql": ""}, "sql"),
            (
                {"project": "fraud", "inputs": {"t": "tx"}, "sql": "SELECT 1", "params": {"a": []}},
                "params",
            ),
        ):
            answer = http.post("/datasets/leak/transform", json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["errors"][0]["field"].startswith(field), answer.json()
    assert list_versions(served.platform, "leak") == []

    with served.client("rex") as rex:  # retail: fraud's dataset is not there for him
        with pytest.raises(NotFoundError, match="dataset 'tx' does not exist"):
            rex.run_transform("mine", {"t": "tx"}, sql="SELECT * FROM t", project="retail")
        with pytest.raises(NotFoundError, match="does not exist"):
            rex.run_transform("mine", {"t": "tx:1"}, sql="SELECT * FROM t", project="retail")
    with served.http("rex") as http:  # nor may he transform into fraud
        answer = http.post(
            "/datasets/mine/transform",
            json={"project": "fraud", "inputs": {"t": "tx"}, "sql": "SELECT * FROM t"},
        )
        assert answer.status_code == 403, answer.text
    write_dataset(
        served.platform.in_project("retail"),
        served.platform.admin(),
        "shop",
        pa.table({"id": [1]}),
        source="test",
    )
    with (
        served.client("rex") as rex,
        pytest.raises(AlreadyExistsError, match="is taken in this home"),
    ):
        rex.run_transform("big", {"s": "shop"}, sql="SELECT * FROM s", project="retail")
    assert list_versions(served.platform, "mine") == []
    assert [v.version for v in list_versions(served.platform, "big")] == [1]


def test_a_data_engineer_alone_ingests_a_file_they_upload(served: Served, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("id,amount\n1,2.5\n2,3.5\n")
    with served.client("dora") as dora:  # data_engineer only: the upload is model.upload
        made = dora.ingest(source, "orders", project="fraud")
    assert (made["ref"], made["rows"], made["project"]) == ("orders:1", 2, "fraud")
