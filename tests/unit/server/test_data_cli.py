"""``ghaf data`` and ``ghaf lineage`` against ``ghaf server`` (``--url``) print what they
print on the home: the same tables and JSON documents, the same errors and exit codes;
and the remote CLI loads no data stack (no pyarrow, DuckDB, NumPy)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.settings import GhafSettings, load_settings
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
CONTRACT = "columns:\n  id: {type: int64, unique: true}\n  amount: {type: double, min: 0}\n"
HEAVY = {"duckdb", "pyarrow", "numpy", "pandas", "sqlalchemy", "sklearn", "torch"}


@dataclass
class Modes:
    """The same person on the home and against the server."""

    home: tuple[str, ...]
    remote: tuple[str, ...]
    files: Path
    url: str
    token: str


@pytest.fixture
def settings(isolated_env: Path) -> GhafSettings:
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "ghaf.toml").write_text('artifact_region = "ae-auh-1"\n')
    return load_settings(home=isolated_env)


@pytest.fixture
def modes(platform: Platform, tmp_path: Path) -> Iterator[Modes]:
    create_project(platform, platform.admin(), "fraud")
    token = mint(
        platform, "alice", ["data_engineer", "data_scientist"], project="fraud", bind_on="fraud"
    )
    files = tmp_path / "files"
    files.mkdir()
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield Modes(
            ("--home", str(platform.settings.home), "--token", token),
            ("--url", server.url, "--token", token),
            files,
            server.url,
            token,
        )
    finally:
        log = server.stop()
    assert "Traceback" not in log


def test_data_commands_print_the_same_in_both_modes(modes: Modes) -> None:
    first = modes.files / "v1.csv"
    first.write_text("id,amount\n1,10.5\n2,20.0\n3,7.25\n")
    second = modes.files / "v2.parquet"
    pq.write_table(pa.table({"id": [1, 2], "amount": [10.5, 99.0], "note": ["a", "b"]}), second)
    contract = modes.files / "c.yaml"
    contract.write_text(CONTRACT)
    ingest = ("data", "ingest", str(first), "-c", str(contract), "--project", "fraud")
    remote = ghaf(*modes.remote, *ingest, "-n", "tx")
    local = ghaf(*modes.home, *ingest, "-n", "copy")
    assert remote.returncode == local.returncode == 0, (remote.stderr, local.stderr)
    assert remote.stdout.startswith("tx:1: 3 rows, 2 columns, digest ")
    assert remote.stdout.replace("tx:1", "copy:1") == local.stdout
    again = ghaf(*modes.remote, "data", "ingest", str(second), "-n", "tx", "-p", "fraud")
    assert again.returncode == 0, again.stderr
    commands = [
        ("data", "list"),
        ("data", "versions", "tx"),
        ("data", "show", "tx:1"),
        ("data", "show", "tx"),
        ("data", "diff", "tx:1", "tx:2"),
        ("data", "preview", "tx:2"),
        ("data", "preview", "tx:1", "--limit", "2", "--column", "amount"),
        ("lineage", "show", "dataset:tx:2"),
        ("lineage", "export", "--dataset", "tx"),
    ]
    for command in commands:
        for output in ((), ("--output", "json")):
            local = ghaf(*modes.home, *command, *output)
            remote = ghaf(*modes.remote, *command, *output)
            assert local.returncode == remote.returncode == 0, (
                command,
                local.stderr,
                remote.stderr,
            )
            assert remote.stdout == local.stdout, command
            if output:
                json.loads(remote.stdout)  # one JSON document
    shown = json.loads(ghaf(*modes.remote, "data", "show", "tx:1", "--output", "json").stdout)
    assert (shown["ref"], shown["project"], shown["rows"]) == ("tx:1", "fraud", 3)
    assert shown["validation"]["ok"] is True and shown["source"] == f"csv:{first}"
    table = ghaf(*modes.remote, "data", "validate", "tx:1", "-c", str(contract))
    assert (
        table.returncode == 0
        and table.stdout
        == ghaf(*modes.home, "data", "validate", "tx:1", "-c", str(contract)).stdout
    )
    reports = [
        json.loads(
            ghaf(*m, "data", "validate", "tx:1", "-c", str(contract), "--output", "json").stdout
        )
        for m in (modes.home, modes.remote)
    ]
    for report in reports:
        report.pop("seconds")
    assert reports[0] == reports[1] and reports[0]["ok"] is True


def test_errors_and_exit_codes_are_the_same(modes: Modes) -> None:
    data = modes.files / "tx.csv"
    data.write_text("id,amount\n1,10.5\n")
    bad = modes.files / "bad.csv"
    bad.write_text("id,amount\n1,2\n3\n")
    strict = modes.files / "strict.yaml"
    strict.write_text("columns:\n  amount: {min: 50}\n")
    assert (
        ghaf(*modes.remote, "data", "ingest", str(data), "-n", "tx", "-p", "fraud").returncode == 0
    )
    cases = [
        (("data", "show", "nope:1"), 4),
        (("data", "versions", "nope"), 4),
        (("data", "validate", "tx:1", "-c", str(strict)), 3),
        (("data", "ingest", str(bad), "-n", "tx", "-p", "fraud"), 3),
        (("lineage", "show", "widget:1"), 3),
    ]
    for command, code in cases:
        local = ghaf(*modes.home, *command)
        remote = ghaf(*modes.remote, *command)
        assert local.returncode == remote.returncode == code, (command, local.stderr, remote.stderr)
        assert remote.stderr.splitlines()[0] == local.stderr.splitlines()[0], command
        assert "Traceback" not in remote.stderr
    home_only = ghaf(
        *modes.remote, "data", "ingest", "sql:sqlite:///x.db", "-n", "t", "--query", "select 1"
    )
    assert home_only.returncode == 3 and "runs on a home" in home_only.stderr


def test_the_remote_data_cli_loads_no_data_stack(modes: Modes) -> None:
    data = modes.files / "tx.csv"
    data.write_text("id,amount\n1,10.5\n")
    code = (
        "import sys\n"
        "from ghaf.cli.main import run\n"
        "url, token, path = sys.argv[1:4]\n"
        "for args in (['data', 'ingest', path, '-n', 'tx', '-p', 'fraud'], ['data', 'show',"
        " 'tx:1'], ['data', 'preview', 'tx:1'], ['lineage', 'show', 'dataset:tx:1']):\n"
        "    sys.argv = ['ghaf', '--url', url, '--token', token, *args]\n"
        "    try:\n"
        "        run()\n"
        "    except SystemExit as stop:\n"
        "        assert not stop.code, stop.code\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    done = ghaf_python(code, modes.url, modes.token, str(data))
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.strip().splitlines()[-1].strip("[]").replace("'", "").split(", "))
    assert not loaded & HEAVY, f"the remote CLI imported {sorted(loaded & HEAVY)}"


def ghaf_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
