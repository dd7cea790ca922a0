"""The CLI (as a user types it) and the feature server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghaf.features.materialize import materialize
from ghaf.features.registry import apply_definitions
from ghaf.platform import Platform
from ghaf.testing.online_store import make_source
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

DEFS = """
from datetime import timedelta
from ghaf.features import Entity, FeatureService, FeatureView, Field
customer = Entity("customer", ("customer_id",))
stats = FeatureView("customer_stats", (customer,), {source!r},
                    (Field("spend", {dtype!r}), Field("count", "int64")),
                    ttl=timedelta(days=10000))
svc = FeatureService("svc", ("customer_stats:spend",))
"""


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_apply_materialize_get_check(platform: Platform, tmp_path: Path) -> None:
    home = platform.settings.home
    source = make_source(tmp_path / "s.parquet")
    defs = tmp_path / "defs.py"
    defs.write_text(DEFS.format(source=str(source), dtype="float64"))
    applied = _ghaf(home, "features", "apply", str(defs))
    assert applied.returncode == 0, applied.stderr
    assert "+ feature_view customer_stats v1" in applied.stdout
    done = _ghaf(home, "features", "materialize", "--until", "2026-02-01T00:00:00+00:00")
    assert done.returncode == 0, done.stderr
    assert "full, 50 rows" in done.stdout
    got = _ghaf(home, "features", "get", "--features", "svc", "--entity", "customer_id=3")
    assert got.returncode == 0 and '"spend":[' in got.stdout
    assert _ghaf(home, "features", "check", "customer_stats").returncode == 0
    # Bad input: an incompatible change without --force is refused, nothing stored changes.
    defs.write_text(DEFS.format(source=str(source), dtype="int64"))
    refused = _ghaf(home, "features", "apply", str(defs))
    assert refused.returncode == 3
    assert "incompatible change to feature_view customer_stats" in refused.stderr
    listed = _ghaf(home, "features", "list")
    assert "customer_stats" in listed.stdout and " 2 " not in listed.stdout
    bad = _ghaf(home, "features", "materialize", "--until", "yesterday")
    assert bad.returncode == 3 and "--until" in bad.stderr
    missing = _ghaf(home, "features", "apply", str(tmp_path / "nope.py"))
    assert missing.returncode == 3 and "does not exist" in missing.stderr


@pytest.fixture
def server_url(platform: Platform, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``ghaf features serve`` as a real process, and a token of a viewer ("alice")."""
    source = make_source(tmp_path / "s.parquet")
    from ghaf.testing.online_store import sample_definitions

    apply_definitions(platform, platform.admin(), sample_definitions(source, ttl_days=10_000))
    materialize(platform, platform.admin())
    token = mint(platform, "alice", ["viewer"])
    server = ServerProcess(
        platform.settings.home, ("features", "serve"), "/health", tmp_path / "features.log"
    ).start()
    try:
        yield server.url, token
    finally:
        log = server.stop()
    assert "Traceback" not in log


def test_server_answers_batches_health_metrics_and_auth(server_url: tuple[str, str]) -> None:
    server_url, token = server_url
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server_url, headers=headers) as client:
        assert client.get("/health").json() == {"status": "ok"}
        body = {"entities": {"customer_id": [1, 2, 999]}, "features": ["customer_stats:spend"]}
        answer = client.post("/get-online-features", json=body)
        assert answer.status_code == 200
        spend = answer.json()["features"]["spend"]
        assert spend[0] is not None and spend[2] is None
        assert answer.json()["age_seconds"]["customer_stats"][2] is None
        bad = client.post(
            "/get-online-features",
            json={"entities": {"customer_id": [1]}, "features": ["customer_stats:nope"]},
        )
        assert bad.status_code == 400 and "customer_stats:nope" in bad.json()["error"]
        nokey = client.post(
            "/get-online-features", json={"entities": {"cid": [1]}, "feature_service": "fraud_v1"}
        )
        assert nokey.status_code == 400 and "customer_id" in nokey.json()["error"]
        metrics = client.get("/metrics").text
        assert 'ghaf_feature_requests_total{path="/get-online-features",status="200"} 1' in metrics
        assert "ghaf_feature_entities_total 3" in metrics
    missing = httpx.post(f"{server_url}/get-online-features", json=body)
    assert missing.status_code == 401
    forged = httpx.post(
        f"{server_url}/get-online-features", json=body, headers={"authorization": "Bearer ghaf_x"}
    )
    assert forged.status_code == 401
