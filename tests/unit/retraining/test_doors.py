"""The closed loop's doors: ``ghaf deployments retrain-on|retraining|retrain-off`` on a home
and against ``ghaf server`` (the SDK's calls and the CLI with a login), each write
authorized and audited, bad input one line naming the field; and ``ghaf monitor run
--loop`` closing the loop, whose hops ``ghaf incidents show`` lists."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import ghaf
from ghaf.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.home import init_home
from ghaf.monitoring.schedule import schedule_monitor
from ghaf.platform import Platform
from ghaf.settings import SETTINGS_FILE, load_settings
from ghaf.testing.people import mint
from ghaf.testing.retraining import TARGET
from tests.unit.monitoring.monitor_home import Seeded, seed_home
from tests.unit.retraining.test_loop import _log_drift
from tests.unit.server.cli_runner import ghaf as ghaf_cli
from tests.unit.serving.server_processes import ServerProcess, audit_records

pytestmark = pytest.mark.slow

PLAN = "steps: [25, 100]\nmin_samples: 20\nmax_error_rate: null\nquality: null\n"


@pytest.fixture
def seeded(isolated_env: Path, tmp_path: Path) -> Iterator[tuple[Platform, Seeded]]:
    """A home whose operator declared the toy retraining pipeline; ``fraud`` deployed."""
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / SETTINGS_FILE).write_text(f'pipelines = ["{TARGET}"]\n', encoding="utf-8")
    with init_home(load_settings(home=isolated_env)) as platform:
        yield platform, seed_home(platform, tmp_path)


def _json(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = ghaf_cli(*args, "--output", "json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_the_monitor_loop_retrains_and_the_cli_sets_and_shows_policies(
    seeded: tuple[Platform, Seeded], tmp_path: Path
) -> None:
    home, champion = seeded
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    made = _json(
        "deployments", "retrain-on", "fraud", "--pipeline", TARGET, "--canary-plan", str(plan),
        "--param", "weight=3", "--cooldown", "1h", "--max-runs", "2", "--on", "drift.detected",
    )  # fmt: skip
    assert made["cooldown_s"] == 3600 and made["max_runs"] == 2
    assert made["params"] == {"weight": 3} and made["alerts"] == ["drift.detected"]
    assert made["plan"]["steps"] == [25.0, 100.0]  # type: ignore[index]

    # Bad input: one line naming what is wrong and the fix; the stored policy stays.
    plan.with_name("bad.yaml").write_text("steps: [50, 10]\n")
    for args, said in (
        (("--pipeline", "ghaf.pipelines.examples:numbers", "--canary-plan", str(plan)),
         "is not one this home runs"),
        (("--pipeline", TARGET, "--canary-plan", str(plan.with_name("bad.yaml"))),
         "field steps is invalid"),
        (("--pipeline", TARGET, "--canary-plan", str(plan), "--cooldown", "soon"),
         "--cooldown 'soon' is not a duration"),
    ):  # fmt: skip
        bad = ghaf_cli("deployments", "retrain-on", "fraud", *args)
        assert bad.returncode != 0 and said in bad.stderr + bad.stdout, bad.stderr
        assert "Traceback" not in bad.stderr
    shown = _json("deployments", "retraining", "fraud")
    assert [p["params"] for p in shown["policies"]] == [{"weight": 3}]  # type: ignore[index, union-attr]

    # The local scheduler closes the loop: the breach retrains, the candidate waits.
    start = time.time() - 1
    schedule_monitor(home, home.admin(), "fraud", every="5m", start_at=datetime.fromtimestamp(
        start, UTC))  # fmt: skip
    _log_drift(home, champion, start - 290, "door")
    looped = ghaf_cli("monitor", "run", "--loop", "--every", "1s", "--for", "1s")
    assert looped.returncode == 0, looped.stdout + looped.stderr
    assert "retraining run 1 of fraud (incident INC0000001): awaiting_approval" in looped.stdout
    incident = _json("incidents", "show", "INC0000001")
    kinds = [e["kind"] for e in incident["timeline"]]  # type: ignore[index, union-attr]
    assert kinds == ["opened", "alert", "trigger", "retrain", "register", "gate", "approval"]
    table = ghaf_cli("incidents", "show", "INC0000001")
    assert "fraud:2" in table.stdout and "approval" in table.stdout
    runs = _json("deployments", "retraining")["runs"]
    assert [(r["status"], r["candidate"]) for r in runs] == [("awaiting_approval", "fraud:2")]  # type: ignore[index, union-attr]

    gone = _json("deployments", "retrain-off", "fraud")
    assert gone["deleted"]["pipeline"] == TARGET  # type: ignore[index]
    missing = ghaf_cli("deployments", "retraining", "fraud")
    assert missing.returncode != 0 and "has no retraining policy" in missing.stderr


def test_policies_through_the_api_the_sdk_and_the_cli_against_a_server(
    seeded: tuple[Platform, Seeded], tmp_path: Path
) -> None:
    home = seeded[0]
    project = home.default_project
    rita = mint(home, "rita", ["release_manager"], project=project, bind_on=project)
    vic = mint(home, "vic", ["viewer"], project=project, bind_on=project)
    plan = {"steps": [10, 100], "max_error_rate": None}
    server = ServerProcess(home.settings.home, ("server",), "/health", tmp_path / "s.log").start()
    try:
        with ghaf.connect(server.url, token=rita) as r, ghaf.connect(server.url, token=vic) as v:
            made = r.set_retraining(project, "fraud", pipeline=TARGET, plan=plan, cooldown="2h")
            assert made["cooldown_s"] == 7200 and made["created_by"] == "rita"
            with pytest.raises(PermissionDeniedError):
                v.set_retraining(project, "fraud", pipeline=TARGET, plan=plan)
            with pytest.raises(InvalidInputError, match="field max_p99_ms"):
                r.set_retraining(project, "fraud", pipeline=TARGET, plan={**plan,
                                 "max_p99_ms": -1})  # fmt: skip
            with pytest.raises(InvalidInputError, match="is not one this home runs"):
                r.set_retraining(project, "fraud", pipeline="os:system", plan=plan)
            with pytest.raises(NotFoundError, match="deployment 'nope' does not exist"):
                r.set_retraining(project, "nope", pipeline=TARGET, plan=plan)
            seen = v.retraining(project, "fraud")
            assert seen["policy"]["cooldown_s"] == 7200 and seen["runs"] == []
            assert [p["deployment"] for p in v.retraining_policies(project)["policies"]] == [
                "fraud"
            ]
            # The CLI with a login says what the home says.
            login = {"GHAF_URL": server.url, "GHAF_TOKEN": vic}
            remote = _json("deployments", "retraining", "fraud", env=login)
            local = _json("deployments", "retraining", "fraud")
            assert remote == local
            deleted = r.delete_retraining(project, "fraud")
            assert deleted["pipeline"] == TARGET
            with pytest.raises(NotFoundError, match="has no retraining policy"):
                v.retraining(project, "fraud")
    finally:
        log = server.stop()
        assert "Traceback" not in log, log
    [record] = audit_records(home, outcome="allowed", action="deployment.retrain_set")
    assert record.actor == "rita" and record.resource == "deployment:fraud"
    assert json.loads(record.details)["pipeline"] == TARGET
    denied = audit_records(home, outcome="denied", action="deployment.retrain_set")
    assert [d.actor for d in denied][:1] == ["vic"]
