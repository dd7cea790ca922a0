"""`ghaf audit verify` refuses a missing, emptied, truncated, reordered or forged checkpoint
log, a log that disagrees with its write-once copy, and records left uncovered past the
checkpoint interval; each refusal is an IntegrityError (exit code 8) naming what it refuses."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from ghaf.artifacts.local import LocalBlobStore
from ghaf.cli.exit_codes import exit_code_for
from ghaf.cli.main import app
from ghaf.errors import IntegrityError
from ghaf.security.checkpoints import COPY_PREFIX, Checkpoint
from ghaf.security.homekeys import load_signing_key
from ghaf.settings import load_settings
from tests.unit.security.audit_tampering import NEWEST, append_forged, build_home, copy_home

COARSE = "[security]\naudit_checkpoint_every = 4\naudit_checkpoint_seconds = 3600\n"
"""Checkpoints at sizes 1, 5, 9 and 13 (log lines 1..4)."""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pristine") / "home"
    build_home(home, COARSE)
    return home


@pytest.fixture
def home(pristine: Path, tmp_path: Path) -> Path:
    return copy_home(pristine, tmp_path / "home")


def _log(home: Path) -> Path:
    return home / "audit" / "checkpoints.jsonl"


def _store(home: Path) -> LocalBlobStore:
    return LocalBlobStore(home / "artifacts")


def _cli(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[str, BaseException | None]:
    out = CliRunner().invoke(app, ["--home", str(home), *args], env=env)
    return out.stdout, out.exception


def _refused(home: Path, env: dict[str, str] | None = None) -> IntegrityError:
    """Verify, expecting a refusal; returns it after checking its class, code and words."""
    _, error = _cli(home, "audit", "verify", env=env)
    assert isinstance(error, IntegrityError), error
    assert exit_code_for(error) == 8
    assert "None" not in error.headline
    return error


def test_a_missing_log_is_refused(home: Path) -> None:
    _log(home).unlink()
    error = _refused(home)
    assert error.headline == (
        f"audit trail is broken: there is no checkpoint log at {_log(home)}, but the home has "
        f"{NEWEST} records and the artifact store holds 4 copies up to size 13"
    )
    assert "restore audit/checkpoints.jsonl from the copies" in str(error.hint)
    # Nothing signs a fresh history over it: neither a checkpoint nor `ghaf init` again.
    for args in (("audit", "checkpoint"), ("init",)):
        _, refused = _cli(home, *args)
        assert isinstance(refused, IntegrityError)
        assert "missing or empty but the artifact store holds copies" in refused.headline
    assert not _log(home).exists()


def test_a_missing_log_without_copies_is_refused_too(home: Path) -> None:
    _log(home).unlink()
    for key in list(_store(home).keys(COPY_PREFIX)):
        _store(home).delete(key)
    error = _refused(home)
    assert f"there is no checkpoint log at {_log(home)}, but the home has 13 records" in (
        error.headline
    )


def test_an_emptied_log_is_refused(home: Path) -> None:
    _log(home).write_bytes(b"")
    error = _refused(home)
    assert error.headline == (
        f"audit trail is broken: the checkpoint log {_log(home)} is empty, but the home has "
        f"{NEWEST} records and the artifact store holds 4 copies up to size 13"
    )


@pytest.mark.parametrize("cut", ["line", "mid-line"])
def test_a_log_shorter_than_its_copy_is_refused_naming_the_range(home: Path, cut: str) -> None:
    lines = _log(home).read_bytes().splitlines(keepends=True)
    kept = b"".join(lines[:3]) + (lines[3][:40] if cut == "mid-line" else b"")
    _log(home).write_bytes(kept)
    error = _refused(home)
    assert error.headline == (
        "audit trail is broken: the checkpoint log is shorter than its copy: it ends at size 9, "
        "the artifact store holds 4 copies up to size 13; the checkpoints over records 10..13 "
        "were removed from checkpoints.jsonl"
    )


def test_a_deleted_middle_line_is_refused(home: Path) -> None:
    lines = _log(home).read_bytes().splitlines(keepends=True)
    _log(home).write_bytes(lines[0] + b"".join(lines[2:]))
    error = _refused(home)
    assert error.headline.startswith(
        f"audit trail is broken: the checkpoint of size 5 (copy {COPY_PREFIX}000000000005-"
    )
    assert error.headline.endswith("is missing from the log: a line was deleted")


def test_sizes_that_shrink_are_refused(home: Path) -> None:
    lines = _log(home).read_bytes().splitlines(keepends=True)
    _log(home).write_bytes(lines[0] + lines[2] + lines[1] + lines[3])
    error = _refused(home)
    assert error.headline == (
        "audit trail is broken: checkpoint log line 3 (size 5) does not grow the log: "
        "the line before it covers 9 records"
    )


def test_a_forged_checkpoint_is_refused(home: Path) -> None:
    lines = _log(home).read_bytes().splitlines(keepends=True)
    doc = orjson.loads(lines[1])
    doc["root"] = "0" * 64
    _log(home).write_bytes(lines[0] + orjson.dumps(doc) + b"\n" + b"".join(lines[2:]))
    error = _refused(home)
    assert error.headline == (
        "audit trail is broken: checkpoint log line 2 (size 5) is not signed by a trusted key "
        "(forged or altered)"
    )


def test_a_log_line_that_differs_from_its_copy_is_refused(home: Path) -> None:
    # Signed with the home key, so only the copy can tell it is not the original.
    lines = _log(home).read_bytes().splitlines(keepends=True)
    original = Checkpoint.parse(lines[1])
    unsigned = dataclasses.replace(original, ts="2020-01-01T00:00:00+00:00", sig="")
    key = load_signing_key(load_settings(home=home))
    sig = key.sign(unsigned.signed_body(), ec.ECDSA(hashes.SHA256()))
    resigned = dataclasses.replace(unsigned, sig=base64.b64encode(sig).decode())
    _log(home).write_bytes(lines[0] + resigned.to_line() + b"".join(lines[2:]))
    error = _refused(home)
    assert error.headline.startswith(
        "audit trail is broken: the checkpoint of size 5 differs between log line 2 and its "
        f"copy {COPY_PREFIX}000000000005-"
    )


def test_a_deleted_copy_is_refused(home: Path) -> None:
    (key,) = [k for k in _store(home).keys(COPY_PREFIX) if "000000000005-" in k]
    _store(home).delete(key)
    error = _refused(home)
    assert error.headline == (
        "audit trail is broken: checkpoint log line 2 (size 5) has no copy in the artifact store"
    )


def test_an_altered_copy_is_refused(home: Path) -> None:
    (key,) = [k for k in _store(home).keys(COPY_PREFIX) if "000000000009-" in k]
    path = home / "artifacts" / key
    path.write_bytes(path.read_bytes().replace(b'"size":9', b'"size":8'))
    error = _refused(home)
    assert error.headline == (
        f"audit trail is broken: checkpoint copy {key} does not match its key: it was altered"
    )


def test_a_young_unprotected_tail_is_a_warning_naming_the_range(home: Path) -> None:
    append_forged(home, 3)  # behind the checkpoints' back, as a database writer can
    stdout, error = _cli(home, "audit", "verify")
    assert error is None
    assert "warning: records 14..16 are after the last checkpoint (size 13): not protected " in (
        " ".join(stdout.split())
    )
    stdout, error = _cli(home, "audit", "verify", "--output", "json")
    report = json.loads(stdout)
    assert report["status"] == "pending"
    assert report["findings"][0]["severity"] == "warning"
    assert report["findings"][0]["range"] == [14, 16]


def test_a_tail_older_than_the_interval_is_refused(home: Path) -> None:
    append_forged(home, 1)
    # No sleeping: with a zero interval and slack any uncovered record is overdue.
    env = {
        "GHAF_SECURITY__AUDIT_CHECKPOINT_SECONDS": "0",
        "GHAF_SECURITY__AUDIT_CHECKPOINT_SLACK_SECONDS": "0",
    }
    error = _refused(home, env)
    assert error.headline.startswith(
        "audit trail is broken at record 14: record 14 is after the last checkpoint (size 13), "
        "and record 14 is "
    )
    assert "past the 0 s checkpoint interval (+0 s slack)" in error.headline
    assert "`ghaf audit checkpoint` covers them" in str(error.hint)


def test_a_tail_dated_in_the_future_is_refused(home: Path) -> None:
    append_forged(home, 2, at=datetime.now(UTC) + timedelta(days=1))
    error = _refused(home)
    assert error.headline.startswith(
        "audit trail is broken: records 14..15 are after the last checkpoint (size 13), "
        "and record 14 is dated "
    )


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},
    )
    done.stdout, done.stderr = " ".join(done.stdout.split()), " ".join(done.stderr.split())
    return done


def test_the_command_line_as_a_user_types_it(home: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    assert _ghaf(fresh, "init").returncode == 0
    done = _ghaf(fresh, "audit", "verify")
    assert done.returncode == 0
    assert done.stdout == "audit trail valid: 1 records, 1 signed checkpoints, 1 copies"
    made = _ghaf(home, "audit", "checkpoint")
    assert made.returncode == 0 and made.stdout.startswith("checkpoint at 13 records, root ")
    # Its own record is covered when the command exits.
    assert _ghaf(home, "audit", "verify").stdout.startswith("audit trail valid: 14 records")
    _log(home).unlink()
    broken = _ghaf(home, "audit", "verify")
    assert broken.returncode == 8
    assert broken.stderr.startswith(
        f"error: audit trail is broken: there is no checkpoint log at {_log(home)}, but the "
        "home has 14 records and the artifact store holds 5 copies up to size 14"
    )
    assert "None" not in broken.stderr and "Traceback" not in broken.stderr
