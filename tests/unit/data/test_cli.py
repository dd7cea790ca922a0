"""``ghaf data`` and ``ghaf lineage`` as a user types them: output, exit codes, nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow


def ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_data_and_lineage_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert ghaf(home, "init").returncode == 0
    first = tmp_path / "v1.csv"
    first.write_text("id,amount\n1,10.5\n2,20.0\n3,-1\n")
    second = tmp_path / "v2.parquet"
    pq.write_table(pa.table({"id": [1, 2], "amount": [10.5, 99.0], "note": ["a", "b"]}), second)
    contract = tmp_path / "c.yaml"
    contract.write_text(
        "columns:\n  id: {type: int64, unique: true}\n"
        "  amount: {type: double, min: 0, severity: warn}\n"
    )

    done = ghaf(home, "data", "ingest", str(first), "--name", "tx", "--contract", str(contract))
    assert done.returncode == 0, done.stderr
    assert "tx:1: 3 rows" in done.stdout and "1 warnings" in done.stdout
    assert ghaf(home, "data", "ingest", str(second), "--name", "tx").returncode == 0

    versions = ghaf(home, "data", "versions", "tx")
    assert versions.returncode == 0 and "csv:" in versions.stdout

    shown = json.loads(ghaf(home, "data", "show", "tx:1", "--json").stdout)
    assert shown["schema"] == {"id": "int64", "amount": "double"}
    assert shown["profile"]["columns"]["amount"]["min"] == -1.0
    assert "amount" in ghaf(home, "data", "show", "tx").stdout

    diff = json.loads(ghaf(home, "data", "diff", "tx:1", "tx:2", "--json").stdout)
    assert diff["added"] == ["note"] and diff["rows"] == [3, 2]
    assert "max" in diff["stats"]["amount"]

    report = tmp_path / "r.html"
    checked = ghaf(home, "data", "validate", "tx:1", "-c", str(contract), "--html", str(report))
    assert checked.returncode == 0 and "<html>" in report.read_text()
    as_json = ghaf(home, "data", "validate", str(first), "-c", str(contract), "--output", "json")
    assert json.loads(as_json.stdout)["ok"] is True
    assert "range(amount)" in ghaf(home, "data", "validate", "tx:1", "-c", str(contract)).stdout

    lineage = ghaf(home, "lineage", "show", "dataset:tx:1", "--downstream")
    assert lineage.returncode == 0 and "downstream" in lineage.stdout


def test_bad_input_exit_codes_and_nothing_stored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert ghaf(home, "init").returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("id,amount\n1,2\n3\n")
    failed = ghaf(home, "data", "ingest", str(bad), "--name", "tx")
    assert failed.returncode == 3
    assert "bad.csv: line 3" in failed.stderr and "Traceback" not in failed.stderr

    contract = tmp_path / "c.yaml"
    contract.write_text("checks:\n  - {kind: wobble}\n")
    good = tmp_path / "good.csv"
    good.write_text("id\n1\n")
    unknown = ghaf(home, "data", "ingest", str(good), "--name", "tx", "-c", str(contract))
    assert unknown.returncode == 3 and "unknown check kind 'wobble'" in unknown.stderr

    strict = tmp_path / "strict.yaml"
    strict.write_text("columns:\n  id: {min: 5}\n")
    violated = ghaf(home, "data", "validate", str(good), "-c", str(strict))
    assert violated.returncode == 3 and "range(id)" in violated.stderr

    missing = ghaf(home, "data", "versions", "tx")
    assert missing.returncode == 4 and "does not exist" in missing.stderr
    assert ghaf(home, "data", "show", "tx:1").returncode == 4
    assert ghaf(home, "lineage", "show", "widget:1").returncode == 3
