"""``ghaf features serve`` as a real process: who may read which view, and bad bodies.

Reads are authorized per view in its project (``features.read``, or
``features.read_pii`` for a view whose upstream data has a pii column, audited as
allowed on every read); a refusal is a 403 and a ``denied`` audit record. Bad bodies
get a 4xx naming the field; oversized ones a 413 naming the limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from ghaf.data.store import write_dataset
from ghaf.features import Entity, FeatureView, Field
from ghaf.features.materialize import materialize
from ghaf.features.registry import apply_definitions
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import load_settings
from ghaf.testing.online_store import make_source
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import (
    ServerProcess,
    audit_records,
    bearer,
    free_port,
    ghaf,
    port_listening,
)

pytestmark = pytest.mark.slow

PLAIN = {"entities": {"customer_id": [1, 2]}, "features": ["customer_stats:spend"]}
PRIVATE = {"entities": {"customer_id": [1, 2]}, "features": ["customer_private:spend"]}


@pytest.fixture
def platform(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """A home in a UAE region: pii may be stored there (residency). The servers started
    here run with the same region (the pii view's sealing key is stored for it)."""
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", "ae-auh-1")
    with init_home(load_settings(home=isolated_env)) as opened:
        yield opened


@pytest.fixture
def views(platform: Platform, tmp_path: Path) -> Platform:
    """``customer_stats`` from a Parquet file; ``customer_private`` from a dataset whose
    ``spend`` column is tagged pii (so the view is pii by lineage). Both materialized."""
    admin = platform.admin()
    source = make_source(tmp_path / "s.parquet")
    write_dataset(
        platform,
        admin,
        "customers",
        pq.read_table(source),
        source="test",
        column_tags={"spend": "pii"},
    )
    customer = Entity("customer", ("customer_id",))
    fields = (Field("spend"), Field("count", "int64"))
    ttl = timedelta(days=10_000)
    apply_definitions(
        platform,
        admin,
        [
            customer,
            FeatureView("customer_stats", (customer,), str(source), fields, ttl=ttl),
            FeatureView("customer_private", (customer,), "dataset:customers", fields, ttl=ttl),
        ],
    )
    materialize(platform, admin)
    return platform


def _server(platform: Platform, log: Path, *args: str) -> ServerProcess:
    home = platform.settings.home
    return ServerProcess(home, ("features", "serve", *args), "/health", log).start()


@pytest.fixture
def server(views: Platform, tmp_path: Path) -> Iterator[ServerProcess]:
    running = _server(views, tmp_path / "features.log", "--max-entities", "50")
    try:
        yield running
    finally:
        log = running.stop()
    assert "Traceback" not in log


def test_reads_are_authorized_per_view_and_pii_reads_audited(
    views: Platform, server: ServerProcess
) -> None:
    platform = views
    viewer = mint(platform, "vera", ["viewer"])
    engineer = mint(platform, "dana", ["data_engineer"])
    auditor = mint(platform, "audrey", ["auditor"])
    elsewhere = mint(platform, "otto", ["viewer"], project="other", bind_on="other")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health").status_code == 200
        for method, path in [
            ("POST", "/get-online-features"),
            ("GET", "/metrics"),
            ("GET", "/no/such/route"),
        ]:
            anonymous = client.request(method, path, json=PLAIN)
            assert anonymous.status_code == 401, (method, path)
            assert anonymous.headers["www-authenticate"].startswith("Bearer")

        ok = client.post("/get-online-features", json=PLAIN, headers=bearer(viewer))
        assert ok.status_code == 200 and len(ok.json()["features"]["spend"]) == 2
        # A viewer may read features, but not pii ones.
        pii = client.post("/get-online-features", json=PRIVATE, headers=bearer(viewer))
        assert pii.status_code == 403 and "features.read_pii" in pii.json()["error"]
        for token in (auditor, elsewhere):
            refused = client.post("/get-online-features", json=PLAIN, headers=bearer(token))
            assert refused.status_code == 403, refused.text
        # A data engineer reads pii; each read leaves an 'allowed' record.
        for _ in range(2):
            read = client.post("/get-online-features", json=PRIVATE, headers=bearer(engineer))
            assert read.status_code == 200, read.text
        assert client.get("/metrics", headers=bearer(viewer)).status_code == 200
        assert client.get("/metrics", headers=bearer(auditor)).status_code == 403

    denied = audit_records(platform, outcome="denied", action="features.read_pii")
    assert [(r.actor, r.resource, r.project) for r in denied] == [
        ("vera", "feature_view:customer_private", platform.default_project)
    ]
    plain_denied = audit_records(platform, outcome="denied", action="features.read")
    assert sorted(r.actor for r in plain_denied) == ["audrey", "otto"]
    allowed = audit_records(platform, outcome="allowed", action="features.read_pii")
    assert [(r.actor, r.resource) for r in allowed] == [
        ("dana", "feature_view:customer_private")
    ] * 2
    assert audit_records(platform, outcome="allowed", action="features.read") == []


BAD_BODIES: list[tuple[object, int, str]] = [
        ({"entities": {"customer_id": 7}, "features": ["customer_stats:spend"]}, 400,
         "entities.customer_id"),
        ({"entities": {"customer_id": [[1, 2]]}, "features": ["customer_stats:spend"]}, 400,
         "nested list"),
        ({"entities": {"customer_id": [None]}, "features": ["customer_stats:spend"]}, 400,
         "null"),
        ({"entities": {"customer_id": [True]}, "features": ["customer_stats:spend"]}, 400,
         "boolean"),
        ({"entities": {"customer_id": [1.5]}, "features": ["customer_stats:spend"]}, 400,
         "entry 0"),
        ({"entities": {"customer_id": [2**63]}, "features": ["customer_stats:spend"]}, 400,
         "64-bit"),
        ({"entities": {"customer_id": [1], "x": [1, 2]}, "features": ["customer_stats:spend"]},
         400, "entities.x"),
        ({"entities": {"customer_id": [1]}, "features": "customer_stats:spend"}, 400,
         "'features'"),
        ({"entities": {"customer_id": [1]}, "features": [["customer_stats:spend"]]}, 400,
         "'features': entry 0"),
        ({"entities": {"customer_id": [1]}, "features": [3]}, 400, "'features': entry 0"),
        ({"entities": {"customer_id": [1]}, "feature_service": 3}, 400, "feature_service"),
        ({"entities": {"customer_id": [1]}, "features": ["customer_stats:spend"],
          "full_feature_names": "yes"}, 400, "full_feature_names"),
        ({"entities": {"customer_id": [1]}, "feature": ["customer_stats:spend"]}, 400,
         "unknown field 'feature'"),
        ({"entities": {"customer_id": list(range(51))}, "features": ["customer_stats:spend"]},
         413, "the limit is 50"),
        ([1, 2], 400, "JSON object"),
]  # fmt: skip
"""(body, status, words the error must contain)."""


def test_bad_bodies_get_a_4xx_naming_the_field(views: Platform, server: ServerProcess) -> None:
    token = mint(views, "alice", ["viewer"])
    with httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as client:
        for body, status, names in BAD_BODIES:
            reply = client.post("/get-online-features", json=body)
            assert reply.status_code == status, (body, reply.text)
            assert names in reply.json()["error"], (body, reply.text)
        assert client.post("/get-online-features", content=b"{nope").status_code == 400
        assert client.post("/get-online-features", json=PLAIN).status_code == 200


def test_body_size_limit_is_413_and_the_server_stays_healthy(
    views: Platform, tmp_path: Path
) -> None:
    token = mint(views, "alice", ["viewer"])
    running = _server(views, tmp_path / "features.log", "--max-body-mb", "0.05")
    try:
        huge = {"entities": {"customer_id": list(range(2_000_000))}, "features": ["x:y"]}
        reply = httpx.post(
            f"{running.url}/get-online-features", json=huge, headers=bearer(token), timeout=60
        )
        assert reply.status_code == 413 and "limit of 52428 bytes" in reply.json()["error"]
        assert "--max-body-mb" in reply.json()["hint"]
        fine = httpx.post(f"{running.url}/get-online-features", json=PLAIN, headers=bearer(token))
        assert fine.status_code == 200
    finally:
        log = running.stop()
    assert "Traceback" not in log


def test_insecure_dev_only_on_loopback(views: Platform, tmp_path: Path) -> None:
    home = views.settings.home
    port = free_port()
    refused = ghaf(home, "features", "serve", "--insecure-dev", "--host", "0.0.0.0",  # nosec B104
                   "--port", str(port))  # fmt: skip
    assert refused.returncode != 0, refused.stdout
    assert "--insecure-dev refuses to serve on 0.0.0.0" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not port_listening(port)
    running = _server(views, tmp_path / "insecure.log", "--insecure-dev")
    try:
        anonymous = httpx.post(f"{running.url}/get-online-features", json=PRIVATE)
        assert anonymous.status_code == 200
    finally:
        log = running.stop()
    assert "INSECURE DEV" in log
