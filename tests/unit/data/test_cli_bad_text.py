"""``ghaf data ingest`` on text it cannot trust: one line, the input exit code, nothing changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.cli.exit_codes import exit_code_for
from ghaf.errors import InvalidInputError

pytestmark = pytest.mark.slow
BAD_INPUT = exit_code_for(InvalidInputError("x"))


def ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == BAD_INPUT, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and words in lines[0], result.stderr
    assert len(lines) == 2 and lines[1].startswith("  hint: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_text_and_bad_contracts_are_refused_and_change_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert ghaf(home, "init").returncode == 0
    good = tmp_path / "good.csv"
    good.write_text("id,name\n1,ann\n")
    assert ghaf(home, "data", "ingest", str(good), "--name", "people").returncode == 0
    before = json.loads(ghaf(home, "data", "show", "people", "--json").stdout)

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("id,name\n1,ann\n2,José\n".encode("latin-1"))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("id,name\n3,Zoë\n".encode("utf-16"))
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('id,name\n1,ann\n2,"bob\n3,cy\n')
    listed = tmp_path / "listed.yaml"
    listed.write_text("columns:\n  - id\n  - name\n")

    ingest = ("data", "ingest")
    refused(
        ghaf(home, *ingest, str(latin1), "--name", "people"),
        "latin1.csv: line 3: byte 0xe9 at offset 19 is not valid utf-8",
    )
    refused(ghaf(home, *ingest, str(utf16), "--name", "people"), "utf16.csv is UTF-16 text")
    refused(
        ghaf(home, *ingest, str(unclosed), "--name", "people"),
        "unclosed.csv: line 3: a quoted value opens there and never closes",
    )
    refused(
        ghaf(home, *ingest, str(good), "--name", "people", "--contract", str(listed)),
        "listed.yaml: columns must be a mapping, not a list",
    )
    refused(
        ghaf(home, *ingest, str(good), "--name", "people", "--encoding", "klingon"),
        "--encoding 'klingon' is not a known text encoding",
    )
    after = json.loads(ghaf(home, "data", "show", "people", "--json").stdout)
    assert after == before
    assert "people:2" not in ghaf(home, "data", "versions", "people").stdout

    # With the file's encoding named, the same bytes are text, not a binary column.
    done = ghaf(home, *ingest, str(latin1), "--name", "people", "--encoding", "latin-1")
    assert done.returncode == 0, done.stderr
    done = ghaf(home, *ingest, str(utf16), "--name", "people", "--encoding", "utf-16")
    assert done.returncode == 0, done.stderr
    shown = json.loads(ghaf(home, "data", "show", "people:3", "--json").stdout)
    assert shown["schema"] == {"id": "int64", "name": "string"}
    assert shown["version"] == 3
