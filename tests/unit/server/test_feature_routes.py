"""The feature store through ``ghaf server`` as a real process: definitions applied over
HTTP, materializations and historical retrievals run as jobs, training sets downloaded.

What a user relies on: the same governed services as embedded mode (audited, pii sealed
or refused), the same point-in-time answers, jobs that outlive the request, another
project's people seeing nothing, bad input a 400 naming the field with nothing written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

import ghaf
from ghaf.client import Client
from ghaf.data import write_dataset
from ghaf.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
)
from ghaf.features.materialize import check_consistency
from ghaf.features.registry import list_definitions
from ghaf.features.retrieval import get_historical_features
from ghaf.features.sealing import SEALED_PREFIX
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.settings import GhafSettings, load_settings
from ghaf.testing.online_store import T0, TS, make_source
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

FEATURES = ["customer_stats:spend", "customer_stats:count", "customer_stats:segment"]
UNTIL = T0 + timedelta(days=30)


def definitions(**view: Any) -> dict[str, Any]:
    """A definitions YAML document: an entity, a view over the dataset ``stats``, a service."""
    return {
        "entities": [{"name": "customer", "join_keys": ["customer_id"]}],
        "feature_views": [
            {
                "name": "customer_stats",
                "entities": ["customer"],
                "source": "dataset:stats",
                "features": [
                    {"name": "spend"},
                    {"name": "count", "dtype": "int64"},
                    {"name": "segment", "dtype": "string"},
                ],
                "ttl_seconds": 10_000 * 86_400,
                "owner": "risk",
                **view,
            }
        ],
        "feature_services": [
            {"name": "fraud_v1", "features": ["customer_stats:spend", "customer_stats:count"]}
        ],
    }


def entity_frame() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([1, 2, 3, 999, 1], pa.int64()),
            "event_ts": pa.array([T0 + timedelta(days=d) for d in (1, 5, 9, 2, 30)], TS),
            "label": pa.array([0, 1, 0, 1, 1], pa.int64()),
        }
    )


@dataclass
class Served:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]

    def client(self, who: str) -> Client:
        return ghaf.connect(self.server.url, token=self.tokens[who])

    def http(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)


@pytest.fixture
def settings(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> GhafSettings:
    """A home whose stores are in the UAE, where pii may live (the default policy)."""
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", "ae-auh-1")
    return load_settings(home=isolated_env)


def _start(platform: Platform, tmp_path: Path, env: dict[str, str] | None = None) -> ServerProcess:
    log = tmp_path / f"server-{len(list(tmp_path.glob('server-*.log')))}.log"
    return ServerProcess(platform.settings.home, ("server",), "/health", log, env=env or {}).start()


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    admin = platform.admin()
    create_project(platform, admin, "retail")
    source = pq.read_table(make_source(tmp_path / "stats.parquet"))
    write_dataset(platform, admin, "stats", source, source="test")
    write_dataset(platform, admin, "visits", entity_frame(), source="test")
    both = ["data_engineer", "data_scientist"]
    here = platform.default_project
    tokens = {
        "alice": mint(platform, "alice", both, project=here, bind_on=here),
        "vera": mint(platform, "vera", ["viewer"], project=here, bind_on=here),
        "rita": mint(platform, "rita", both, project="retail", bind_on="retail"),
    }
    server = _start(platform, tmp_path)
    try:
        yield Served(platform, server, tokens)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _audit(platform: Platform, action: str) -> list[tuple[str, str, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow)
            .where(AuditRecordRow.action == action)
            .order_by(AuditRecordRow.seq)
        ).scalars()
        return [(r.actor, r.outcome, r.project) for r in rows]


def _audit_count(platform: Platform) -> int:
    with platform.read_session() as session:
        return int(session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one())


def _ready(served: Served, tmp_path: Path) -> tuple[str, str]:
    """alice applies, materializes and retrieves; the two job ids."""
    with served.client("alice") as alice:
        alice.apply_features(definitions())
        done = alice.materialize(until=UNTIL, full=True)
        entities = tmp_path / "entities.parquet"
        pq.write_table(entity_frame(), entities)
        retrieval = alice.retrieve(
            "churn_train", features=FEATURES, entities=entities, project="default"
        )
    return str(done["id"]), str(retrieval["id"])


def test_alice_applies_materializes_and_retrieves_as_embedded_mode_would(
    served: Served, tmp_path: Path
) -> None:
    platform = served.platform
    with served.client("alice") as alice:
        applied = alice.apply_features(definitions(), source="defs.yaml")
        assert [(c["kind"], c["action"]) for c in applied["changes"]] == [
            ("entity", "create"),
            ("feature_view", "create"),
            ("feature_service", "create"),
        ]
        assert applied["applied"] == 3 and applied["project"] == "default"
        again = alice.apply_features(definitions(), dry_run=True)
        assert {c["action"] for c in again["changes"]} == {"unchanged"}
        assert again["applied"] == 0
        assert _audit(platform, "features.apply") == [("alice", "allowed", "default")]
        listed = alice.feature_definitions()
        stored = list_definitions(platform)
        assert [(d["kind"], d["name"], d["version"], d["spec"]) for d in listed] == [
            (d.kind, d.name, d.version, d.spec) for d in stored
        ]
        view = alice.feature_view("customer_stats")
        assert view["spec"]["source"] == "dataset:stats" and view["materializations"] == []

        # A job outlives its request: submitted without waiting, read by a fresh client.
        submitted = alice.materialize(until=UNTIL, full=True, wait=False)
        assert submitted["status"] in ("queued", "running", "succeeded")
    with served.client("alice") as later:
        done = later.wait_for_job(submitted["id"], timeout=300)
        [result] = done["result"]["materializations"]
        assert (result["view"], result["rows"], result["mode"]) == ("customer_stats", 50, "full")
        assert result["sealed"] is False and result["stats"]["spend"]["count"] == 50
        assert check_consistency(platform, "customer_stats").ok  # the online store agrees
        assert _audit(platform, "features.materialize") == [("alice", "allowed", "default")]
        assert later.feature_view("customer_stats")["materializations"][0]["rows"] == 50

        entities = tmp_path / "entities.parquet"
        pq.write_table(entity_frame(), entities)
        retrieval = later.retrieve(
            "churn_train", features=FEATURES, entities=entities, project="default"
        )
        saved = retrieval["result"]["training_set"]
        assert (saved["name"], saved["version"], saved["rows"]) == ("churn_train", 1, 5)
        downloaded = later.download_training_set(retrieval["id"], tmp_path / "train.parquet")
        from_dataset = later.retrieve(
            "churn_train", feature_service="fraud_v1", entity_dataset="visits"
        )
        assert from_dataset["result"]["training_set"]["version"] == 2
        jobs = [j["id"] for j in later.feature_jobs()]
    expected = get_historical_features(platform, entity_frame(), FEATURES).read_all()
    assert pq.read_table(downloaded).to_pylist() == expected.to_pylist()
    assert jobs == [from_dataset["id"], retrieval["id"], submitted["id"]]
    assert [a for a, o, _ in _audit(platform, "features.save_training_set") if o == "allowed"] == [
        "alice",
        "alice",
    ]


def test_another_project_sees_nothing_and_writes_nothing(served: Served, tmp_path: Path) -> None:
    materialized, retrieved = _ready(served, tmp_path)
    platform = served.platform
    before = _audit_count(platform)
    with served.http("rita") as rita:
        assert rita.get("/features/definitions").json() == {"definitions": []}
        assert rita.get("/features/jobs").json() == {"jobs": []}
        nobody = "0" * 32
        for template, name, missing in (
            ("/features/views/{}", "customer_stats", "nope"),
            ("/features/entities/{}", "customer", "nope"),
            ("/features/services/{}", "fraud_v1", "nope"),
            ("/features/jobs/{}", retrieved, nobody),
            ("/features/jobs/{}", materialized, nobody),
            ("/features/jobs/{}/result", retrieved, nobody),
        ):
            # A guessed name of another project's thing reads as one that does not exist.
            hidden, absent = rita.get(template.format(name)), rita.get(template.format(missing))
            assert hidden.status_code == absent.status_code == 404, template
            assert hidden.json()["title"] == absent.json()["title"].replace(missing, name)
        refused = rita.post("/features/definitions", json={"definitions": definitions(owner="x")})
        assert refused.status_code == 403 and "rita" in refused.json()["title"]
        assert rita.post("/features/materializations", json={}).status_code == 403
        # Her own file in her own project does not open alice's features to her.
        with served.client("rita") as sdk:
            entities = tmp_path / "rita.parquet"
            pq.write_table(entity_frame().slice(0, 2), entities)  # bytes of her own
            with pytest.raises(NotFoundError, match="customer_stats"):
                sdk.retrieve("mine", features=FEATURES, entities=entities, project="retail")
            digest = sdk.upload_file(entities, "retail")
    assert [(d.kind, d.name, d.version) for d in list_definitions(platform)] == [
        ("entity", "customer", 1),
        ("feature_service", "fraud_v1", 1),
        ("feature_view", "customer_stats", 1),
    ]
    with served.http("alice") as alice:
        # A digest uploaded to another project does not count as uploaded here.
        sneaky = alice.post(
            "/features/retrievals",
            json={"name": "x", "features": FEATURES, "entities": {"upload": digest}},
        )
        assert (
            sneaky.status_code == 404
            and "not uploaded to project 'default'" in sneaky.json()["title"]
        )
    with served.client("vera") as vera:  # a viewer of the project reads, and only reads
        assert len(vera.feature_definitions()) == 3
        assert vera.feature_job(retrieved)["status"] == "succeeded"
        with pytest.raises(PermissionDeniedError):
            vera.materialize(until=UNTIL, full=True)
        with pytest.raises(PermissionDeniedError):
            vera.apply_features(definitions(owner="vera"))
    # Another project's dataset reads as one that does not exist, as a source or as rows.
    write_dataset(
        platform.in_project("retail"), platform.admin(), "ritas", entity_frame(), source="t"
    )
    with served.http("alice") as alice:
        for ref, missing in (("ritas", "nope"), ("ritas:1", "nope:1")):
            answers = [
                alice.post(
                    "/features/retrievals",
                    json={"name": "x", "features": FEATURES, "entities": {"dataset": name}},
                )
                for name in (ref, missing)
            ]
            assert [a.status_code for a in answers] == [404, 404]
            assert answers[0].json()["title"] == answers[1].json()["title"].replace("nope", "ritas")
        over = alice.post(
            "/features/definitions", json={"definitions": definitions(source="dataset:ritas")}
        )
        assert over.status_code == 404 and over.json()["title"] == "dataset 'ritas' does not exist"
    denied = [r for r in _audit(platform, "features.apply") if r[1] == "denied"]
    assert [r[0] for r in denied] == ["rita", "vera"]
    assert _audit_count(platform) > before  # refusals are audited


def _retail_definitions() -> dict[str, Any]:
    """rita's definitions: her own names over a dataset of her project."""
    document = definitions(source="dataset:rstats")
    document["entities"][0]["name"] = "shopper"
    document["feature_views"][0].update(name="basket_stats", entities=["shopper"])
    document["feature_services"] = [{"name": "retail_v1", "features": ["basket_stats:spend"]}]
    return document


def test_each_project_applies_its_own_features_and_sees_none_of_the_other_s(
    served: Served, tmp_path: Path
) -> None:
    platform = served.platform
    write_dataset(
        platform.in_project("retail"),
        platform.admin(),
        "rstats",
        pq.read_table(make_source(tmp_path / "rstats.parquet")),
        source="test",
    )
    _ready(served, tmp_path)
    with served.http("rita") as rita:
        mine = {"definitions": _retail_definitions(), "project": "retail"}
        applied = rita.post("/features/definitions", json=mine)
        assert applied.status_code == 200, applied.text
        assert (applied.json()["project"], applied.json()["applied"]) == ("retail", 3)
        listed = rita.get("/features/definitions").json()["definitions"]
        assert [(d["name"], d["project"]) for d in listed] == [
            ("shopper", "retail"),
            ("retail_v1", "retail"),
            ("basket_stats", "retail"),
        ]
        assert rita.get("/features/definitions", params={"project": "default"}).json() == {
            "definitions": []
        }
        assert rita.get("/features/views/basket_stats").json()["project"] == "retail"
        assert rita.get("/features/views/customer_stats").status_code == 404
        # A name stays with its first project, through the dry run too.
        for dry_run in (True, False):
            taken = rita.post(
                "/features/definitions",
                json={"definitions": definitions(source="dataset:rstats"), "project": "retail",
                      "dry_run": dry_run},
            )  # fmt: skip
            assert taken.status_code == 409, taken.text
            assert "entity name 'customer' is taken in this home" in taken.json()["title"]
        # Another project's view cannot be materialized through hers, nor read to find out.
        theirs = rita.post(
            "/features/materializations", json={"project": "retail", "views": ["customer_stats"]}
        )
        assert theirs.status_code == 404, theirs.text
    with served.client("rita") as sdk:
        job = sdk.materialize(["basket_stats"], until=UNTIL, full=True)
        [result] = job["result"]["materializations"]
        assert (job["project"], result["view"], result["rows"]) == ("retail", "basket_stats", 50)
        assert [j["id"] for j in sdk.feature_jobs()] == [job["id"]]
    with served.client("alice") as alice:
        assert {d["project"] for d in alice.feature_definitions()} == {"default"}
        with pytest.raises(NotFoundError, match="basket_stats"):
            alice.feature_view("basket_stats")
        assert job["id"] not in [j["id"] for j in alice.feature_jobs()]
    assert _audit(platform, "features.materialize")[-1] == ("rita", "allowed", "retail")
    assert {(d.name, d.project) for d in list_definitions(platform) if d.kind == "entity"} == {
        ("customer", "default"),
        ("shopper", "retail"),
    }


def test_bad_input_is_a_400_naming_the_field_and_nothing_is_written(
    served: Served, tmp_path: Path
) -> None:
    platform = served.platform
    with served.http("alice") as alice:
        before = _audit_count(platform)

        def refused(path: str, body: Any, field: str) -> None:
            answer = alice.post(path, json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["errors"][0]["field"] == field, answer.json()

        field = "definitions.feature_views.0.source"
        refused("/features/definitions", {"definitions": definitions(source="/etc/passwd")}, field)
        transform = {"sql": "SELECT * FROM read_csv('/etc/passwd')", "inputs": {}}
        refused("/features/definitions", {"definitions": definitions(source=transform)}, field)
        refused(
            "/features/definitions",
            {"definitions": definitions(features=[{"name": "x", "dtype": "decimal"}])},
            "definitions.feature_views.0.features.0.dtype",
        )
        lonely = definitions()
        lonely["entities"] = []
        refused("/features/definitions", {"definitions": lonely}, "definitions")
        refused("/features/materializations", {"until": "2026-02-01T00:00:00"}, "until")
        refused(
            "/features/retrievals",
            {
                "name": "t",
                "features": FEATURES,
                "feature_service": "x",
                "entities": {"dataset": "visits"},
            },
            "body",
        )
        refused(
            "/features/retrievals", {"name": "t", "features": FEATURES, "entities": {}}, "entities"
        )
        refused(
            "/features/retrievals",
            {"name": "../t", "features": FEATURES, "entities": {"dataset": "visits"}},
            "name",
        )
        assert alice.get("/features/jobs/not-a-job").status_code == 400
        assert _audit_count(platform) == before  # nothing was tried, nothing written
        assert list_definitions(platform) == []

        assert (
            alice.post("/features/definitions", json={"definitions": definitions()}).status_code
            == 200
        )
        missing = alice.post("/features/materializations", json={"views": ["nope"]})
        assert missing.status_code == 404 and "nope" in missing.json()["title"]
        breaking = definitions(features=[{"name": "spend", "dtype": "int64"}])
        incompatible = alice.post("/features/definitions", json={"definitions": breaking})
        assert incompatible.status_code == 400 and "incompatible" in incompatible.json()["title"]
    assert [d.version for d in list_definitions(platform)] == [1, 1, 1]
    with served.client("alice") as sdk:
        junk = tmp_path / "junk.parquet"
        junk.write_bytes(b"not parquet at all")
        with pytest.raises(InvalidInputError, match="not a readable Parquet file"):
            sdk.retrieve("t", features=FEATURES, entities=junk, project="default")
        job = sdk.feature_jobs()[0]
        assert job["status"] == "failed" and job["error"]["status"] == 400
        with pytest.raises(InvalidInputError, match="no training set"):
            sdk.download_training_set(job["id"], tmp_path / "none.parquet")
    assert not (tmp_path / "none.parquet").exists()


def _sqlite_values(platform: Platform) -> list[tuple[object, ...]]:
    path = platform.settings.resolved_online_store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute('SELECT "spend", "count", "segment" FROM fv_customer_stats').fetchall()


def test_pii_is_sealed_or_refused_remotely_as_on_the_home(
    platform: Platform, tmp_path: Path
) -> None:
    write_dataset(
        platform,
        platform.admin(),
        "stats",
        pq.read_table(make_source(tmp_path / "stats.parquet")),
        source="test",
        column_tags={"segment": "pii"},
    )
    here = platform.default_project
    alice = mint(platform, "alice", ["data_engineer"], project=here, bind_on=here)
    vera = mint(platform, "vera", ["viewer", "data_scientist"], project=here, bind_on=here)
    server = _start(platform, tmp_path)
    try:
        with ghaf.connect(server.url, token=alice) as client:
            client.apply_features(definitions())
            [result] = client.materialize(until=UNTIL, full=True)["result"]["materializations"]
            entities = tmp_path / "entities.parquet"
            pq.write_table(entity_frame(), entities)
        assert result["sealed"] is True and result["stats"] is None  # no clear ranges
        stored = _sqlite_values(platform)
        assert stored and all(str(v).startswith(SEALED_PREFIX) for row in stored for v in row)
        # The view is pii: reading its values for a training set needs read_pii.
        with (
            ghaf.connect(server.url, token=vera) as client,
            pytest.raises(PermissionDeniedError, match=r"read_pii"),
        ):
            client.retrieve("t", features=FEATURES, entity_dataset="stats", project=here)
    finally:
        assert "Traceback" not in server.stop()
    refusing = _start(platform, tmp_path, env={"GHAF_SECURITY__ONLINE_PII": "refuse"})
    try:
        with (
            ghaf.connect(refusing.url, token=alice) as client,
            pytest.raises(PolicyViolationError, match="online_pii"),
        ):
            client.materialize(until=UNTIL + timedelta(days=1))
    finally:
        assert "Traceback" not in refusing.stop()
    assert _audit(platform, "features.materialize")[-1] == ("alice", "denied", here)
