"""SLOs through ``ghaf server``: the SDK's calls and ``ghaf slo`` against a server (GHAF_URL)
define, list, show, evaluate, fire, export and delete, each authorized in the SLO's
project and audited; bad input is a 4xx naming its field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import ghaf
from ghaf.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.incidents import list_incidents
from ghaf.platform import Platform
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf as ghaf_cli
from tests.unit.serving.server_processes import ServerProcess, audit_records
from tests.unit.slo.scenarios import fast_burn

pytestmark = pytest.mark.slow


@pytest.fixture
def server(platform: Platform, tmp_path: Path) -> Iterator[str]:
    running = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield running.url
    finally:
        log = running.stop()
        assert "Traceback" not in log, log


def test_slos_through_the_api_and_the_cli_against_a_server(
    platform: Platform, server: str, tmp_path: Path
) -> None:
    project = platform.default_project
    sre = mint(platform, "sam", ["sre"], project=project, bind_on=project)
    viewer = mint(platform, "vic", ["viewer"], project=project, bind_on=project)
    s = fast_burn()
    assert s.onset is not None
    at = float(s.series.times()[s.onset + 20])
    with ghaf.connect(server, token=sre) as c, ghaf.connect(server, token=viewer) as v:
        made = c.define_slo(project, s.slo.name, deployment="fraud", sli="availability",
                            objective=0.999)  # fmt: skip
        assert made["budget"] == pytest.approx(0.001)
        with pytest.raises(PermissionDeniedError):
            v.define_slo(project, "other", deployment="fraud", sli="availability", objective=0.9)
        assert [x["name"] for x in v.slos(project)] == [s.slo.name]
        assert v.slo(project, s.slo.name)["deployment"] == "fraud"

        status = v.slo_status(project, s.slo.name, s.series.to_dict(), at=at)
        actions = {x["window"]: x["action"] for x in status["verdicts"]}
        assert actions["1h"] == "page" and actions["3d"] == "none"
        assert status["alerts"] is None and list_incidents(platform) == []
        with pytest.raises(PermissionDeniedError):  # firing writes: alerts and incidents
            v.slo_status(project, s.slo.name, s.series.to_dict(), at=at, fire=True)
        fired = c.slo_status(project, s.slo.name, s.series.to_dict(), at=at, fire=True)
        assert len(fired["alerts"]["opened"]) == sum(a != "none" for a in actions.values())
        assert {i.deployment for i in list_incidents(platform)} == {"fraud"}
        [record] = audit_records(platform, outcome="allowed", action="slo.fire")
        assert record.actor == "sam" and record.resource == f"slo:{s.slo.name}"
        firing = [w for w, a in actions.items() if a != "none"]
        assert json.loads(record.details)["firing"] == firing

        rules = v.slo_rules(project)
        assert rules["format"] == "prometheus"
        assert yaml.safe_load(rules["rules"])["groups"] == rules["groups"]

        # Bad input: a 4xx that names the field, and nothing stored changes.
        with pytest.raises(InvalidInputError, match="objective"):
            c.define_slo(project, s.slo.name, deployment="fraud", sli="availability",
                         objective=1.5)  # fmt: skip
        assert v.slo(project, s.slo.name)["objective"] == 0.999
        bad = {**s.series.to_dict(), "good": [2], "total": [1]}
        with pytest.raises(InvalidInputError, match="'good'"):
            v.slo_status(project, s.slo.name, bad)
        with pytest.raises(InvalidInputError, match="outside the series"):
            v.slo_status(project, s.slo.name, s.series.to_dict(), at=1.0)
        with pytest.raises(NotFoundError):
            v.slo(project, "nope")

    # ghaf slo against the server, as a user types it, with the same JSON as on a home.
    env = {"GHAF_URL": server, "GHAF_TOKEN": sre}
    events = tmp_path / "events.parquet"
    times = s.series.times() - 30.0
    pq.write_table(pa.table({"ts": times, "good": s.series.good, "total": s.series.total}), events)
    done = ghaf_cli(
        "slo", "define", "fraud-latency", "--deployment", "fraud", "--sli", "latency",
        "--objective", "99", "--threshold-ms", "250", "--output", "json", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = json.loads(ghaf_cli("slo", "list", "--output", "json", env=env).stdout)
    assert [x["name"] for x in listed["slos"]] == ["fraud-availability", "fraud-latency"]
    shown = ghaf_cli("slo", "show", "fraud-latency", "--output", "json", env=env)
    assert json.loads(shown.stdout)["threshold_ms"] == 250
    done = ghaf_cli(
        "slo", "status", s.slo.name, "--events", str(events), "--at", str(at), "--output",
        "json", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdicts"] == status["verdicts"]
    table = ghaf_cli("slo", "status", s.slo.name, "--events", str(events), "--at", str(at),
                     env=env)  # fmt: skip
    assert "page" in table.stdout and "Traceback" not in table.stderr
    rules_file = tmp_path / "rules.yaml"
    done = ghaf_cli("slo", "export-rules", "--out", str(rules_file), env=env)
    assert done.returncode == 0, done.stderr
    assert len(yaml.safe_load(rules_file.read_text())["groups"]) == 4
    done = ghaf_cli("slo", "delete", "fraud-latency", "--output", "json", env=env)
    assert json.loads(done.stdout)["deleted"]["name"] == "fraud-latency"
    missing = ghaf_cli("slo", "show", "fraud-latency", env=env)
    assert missing.returncode != 0 and "no SLO named 'fraud-latency'" in missing.stderr
    assert "Traceback" not in missing.stderr
    refused = ghaf_cli("slo", "delete", s.slo.name, env={**env, "GHAF_TOKEN": viewer})
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert [r.action for r in audit_records(platform, outcome="denied", action="slo.delete")]
