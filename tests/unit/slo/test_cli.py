"""``ghaf slo`` as a user types it: define, list, status (firing alerts), export-rules."""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404 - promtool is a fixed local binary
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.incidents import list_incidents
from ghaf.platform import Platform
from tests.unit.server.cli_runner import ghaf
from tests.unit.slo.scenarios import fast_burn

pytestmark = pytest.mark.slow


def test_define_list_status_and_export_through_the_cli(platform: Platform, tmp_path: Path) -> None:
    done = ghaf(
        "slo", "define", "fraud-availability", "--deployment", "fraud",
        "--sli", "availability", "--objective", "99.9", "--output", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["budget"] == pytest.approx(0.001)
    bad = ghaf(
        "slo", "define", "slow", "--deployment", "fraud", "--sli", "latency",
        "--objective", "0.99",
    )  # fmt: skip
    assert bad.returncode != 0
    assert "threshold_ms" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr

    listed = json.loads(ghaf("slo", "list", "--output", "json").stdout)
    assert [s["name"] for s in listed["slos"]] == ["fraud-availability"]

    s = fast_burn()
    events = tmp_path / "events.parquet"
    pq.write_table(
        pa.table({"ts": s.series.times() - 30.0, "good": s.series.good, "total": s.series.total}),
        events,
    )
    assert s.onset is not None
    at = str(float(s.series.times()[s.onset + 20]))
    done = ghaf(
        "slo", "status", "fraud-availability", "--events", str(events), "--at", at,
        "--fire", "--output", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    actions = {v["window"]: v["action"] for v in status["verdicts"]}
    assert actions["1h"] == "page"
    assert actions["3d"] == "none"
    assert len(status["alerts"]["opened"]) == sum(a != "none" for a in actions.values())
    assert {i.deployment for i in list_incidents(platform)} == {"fraud"}

    rules = tmp_path / "rules.yaml"
    done = ghaf("slo", "export-rules", "--format", "prometheus", "--out", str(rules))
    assert done.returncode == 0, done.stderr
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run(  # nosec B603 - fixed argv, no shell
            [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    as_json = json.loads(ghaf("slo", "export-rules", "--output", "json").stdout)
    assert as_json["format"] == "prometheus"
    assert len(as_json["groups"]) == 2
