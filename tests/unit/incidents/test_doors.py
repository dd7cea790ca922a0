"""The doors onto alerts and incidents: ``ghaf alerts``/``ghaf incidents`` against a real
``ghaf server`` and on the home, and the HTTP routes (Ghaf's and Alertmanager's alert
shapes). A viewer is refused an ack (403, exit 6), an illegal transition is a 400 and
exit 3 naming what is allowed, bad alert JSON names the field, and both modes agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghaf.platform import Platform
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

DOWN = json.dumps(
    {"name": "Down", "labels": {"deployment": "fraud"}, "severity": "critical", "summary": "5xx"}
)


@pytest.fixture
def server(platform: Platform, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(platform.settings.home, ("server",), "/health", tmp_path / "s.log")
    process.start()
    try:
        yield process
    finally:
        log = process.stop()
    assert "Traceback" not in log


def test_the_incident_doors_over_http_and_the_cli(
    platform: Platform, server: ServerProcess
) -> None:
    sam = mint(platform, "sam", ["sre"])
    vic = mint(platform, "vic", ["viewer"])

    def remote(token: str, *args: str) -> tuple[int, str, str]:
        done = ghaf("--url", server.url, "--token", token, *args)
        return done.returncode, done.stdout, done.stderr

    code, out, err = remote(sam, "alerts", "fire", DOWN, "--output", "json")
    assert code == 0, err
    fired = json.loads(out)
    assert (fired["received"], fired["opened"]) == (1, ["INC0000001"])

    code, _, err = remote(vic, "incidents", "ack", "INC0000001")
    assert code == 6 and "may not incident.ack" in err and len(err.strip().splitlines()) <= 2
    with httpx.Client(base_url=server.url + "/api/v1", timeout=30) as api:
        refused = api.post(
            "/incidents/INC0000001/ack", headers={"authorization": f"Bearer {vic}"}, json={}
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        seen = api.get("/incidents/INC0000001", headers={"authorization": f"Bearer {vic}"})
        assert seen.status_code == 200 and seen.json()["incident"]["state"] == "New"

        code, out, err = remote(sam, "incidents", "ack", "INC0000001", "--output", "json")
        assert code == 0, err
        assert json.loads(out)["state"] == "In Progress"
        code, _, err = remote(sam, "incidents", "ack", "INC0000001")
        assert code == 3 and "INC0000001 is In Progress: it cannot ack" in err
        again = api.post(
            "/incidents/INC0000001/ack", headers={"authorization": f"Bearer {sam}"}, json={}
        )
        assert again.status_code == 400
        assert "from In Progress: hold, resolve, cancel" in again.text
        code, _, err = remote(sam, "incidents", "close", "INC0000001")
        assert code == 3 and "cannot close" in err

        code, _, err = remote(sam, "incidents", "assign", "INC0000001", "ravi")
        assert code == 0, err
        code, _, err = remote(sam, "incidents", "note", "INC0000001", "rolled back fraud:4")
        assert code == 0, err
        code, _, err = remote(sam, "incidents", "resolve", "INC0000001", "-m", "rollback held")
        assert code == 0, err

        # Alertmanager's webhook shape: the same alert, a new incident after the resolve
        am = {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "Down", "deployment": "fraud", "severity": "critical"},
                    "annotations": {"summary": "5xx again"},
                    "startsAt": "2026-12-07T10:00:00Z",
                }
            ],
        }
        hook = api.post(
            "/projects/default/alerts/alertmanager",
            headers={"authorization": f"Bearer {sam}"},
            json=am,
        )
        assert hook.status_code == 200, hook.text
        assert hook.json()["opened"] == ["INC0000002"]
        resent = api.post(
            "/projects/default/alerts/alertmanager",
            headers={"authorization": f"Bearer {sam}"},
            json=am,
        )
        assert resent.json()["duplicates"] == 1  # Alertmanager re-sending is counted once
        bad = api.post(
            "/projects/default/alerts",
            headers={"authorization": f"Bearer {sam}"},
            json={"alerts": [{"labels": {"a": "b"}, "severity": "bad"}]},
        )
        assert bad.status_code == 400
        assert "alerts[0]: alert field 'name' is missing" in bad.text
        assert (
            api.post(
                "/projects/default/alerts",
                headers={"authorization": f"Bearer {vic}"},
                json={"alerts": [json.loads(DOWN)]},
            ).status_code
            == 403
        )

    code, _, err = remote(sam, "alerts", "fire", "{not json")
    assert code == 3 and "not valid JSON" in err

    code, out, err = remote(vic, "incidents", "show", "INC0000001", "--output", "json")
    assert code == 0, err
    shown = json.loads(out)
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds == ["opened", "alert", "ack", "assign", "note", "resolve"]
    assert shown["incident"]["assigned_to"] == "ravi"
    # the home's owner sees the same on the home (embedded mode)
    local = ghaf("incidents", "show", "INC0000001", "--output", "json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout) == shown

    code, out, err = remote(vic, "incidents", "list", "--output", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [i["number"] for i in listed["incidents"]] == ["INC0000002", "INC0000001"]
    assert listed["metrics"]["P1"]["count"] == 2
    local = ghaf("incidents", "list", "--output", "json")
    assert json.loads(local.stdout) == listed
    code, out, _ = remote(vic, "alerts", "list", "--output", "json")
    assert [a["count"] for a in json.loads(out)["alerts"]] == [2]


def test_a_server_tells_pagerduty_as_its_callers_raise_ack_and_resolve(
    platform: Platform, tmp_path: Path
) -> None:
    from ghaf.alerts import fingerprint
    from tests.unit.alerts.receivers import http_receiver

    sam = mint(platform, "sam", ["sre"])
    with http_receiver() as web:
        (platform.settings.home / "ghaf.toml").write_text(
            "[alerting]\ngroup_wait_s = 0\n"
            f'[alerting.receivers.pd]\nkind = "pagerduty"\nurl = "{web.url}/pd"\n'
            'routing_key = "RK"\n'
            '[[alerting.routes]]\nreceivers = ["pd"]\n'
        )
        server = ServerProcess(platform.settings.home, ("server",), "/health", tmp_path / "s.log")
        server.start()
        try:

            def remote(*args: str) -> None:
                done = ghaf("--url", server.url, "--token", sam, *args)
                assert done.returncode == 0, done.stderr

            def wait_for(count: int) -> list[str]:
                with web.changed:
                    assert web.changed.wait_for(lambda: len(web.posts) >= count, timeout=60)
                return [p.body["event_action"] for p in web.at("/pd")]

            remote("alerts", "fire", DOWN)
            assert wait_for(1) == ["trigger"]
            remote("incidents", "ack", "INC0000001")
            assert wait_for(2) == ["trigger", "acknowledge"]
            remote("incidents", "resolve", "INC0000001", "-m", "fixed")
            assert wait_for(3) == ["trigger", "acknowledge", "resolve"]
        finally:
            log = server.stop()
        assert "Traceback" not in log
        keys = {p.body["dedup_key"] for p in web.at("/pd")}
        assert keys == {fingerprint("Down", {"deployment": "fraud"})}
