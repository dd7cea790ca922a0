"""The audit trail: every tampering is named by `ghaf audit verify`; checkpoints catch rewrites."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ghaf.access.audit import create_checkpoint
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit import GENESIS_HASH, canonical_body, chain_hash
from ghaf.security.audit_tables import AuditHeadRow, AuditRecordRow
from ghaf.security.checkpoints import checkpoints_path, read_checkpoints, verify_audit
from ghaf.security.merkle import MerkleFrontier, merkle_root
from ghaf.settings import load_settings


@pytest.fixture
def audited(isolated_env: Path) -> Iterator[Platform]:
    """A home with 13 records and checkpoints every 4 records (at 4, 8, 12)."""
    settings = load_settings(home=isolated_env, security={"audit_checkpoint_every": 4})
    with init_home(settings) as platform:
        for index in range(12):
            create_project(platform, platform.admin(), f"p{index}")
        yield platform


def _report(platform: Platform) -> tuple[int | None, str | None]:
    with platform.read_session() as session:
        report = verify_audit(platform.settings, session)
    return report.first_bad_seq, report.problem


def _db(platform: Platform) -> sqlite3.Connection:
    return sqlite3.connect(platform.settings.home / "ghaf.db")


@pytest.mark.parametrize("n", [*range(0, 20), 31, 32, 33, 64, 100])
def test_frontier_root_equals_rfc6962_definition(n: int) -> None:
    leaves = [hashlib.sha256(b"\x00" + bytes([i % 256, i // 256])).digest() for i in range(n)]
    frontier = MerkleFrontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == merkle_root(leaves)
    assert sum(end - start + 1 for start, end in frontier.ranges()) == n


def test_rfc6962_known_answer() -> None:
    # Empty tree hash and a two-leaf tree, from RFC 6962 section 2.1.
    assert merkle_root([]).hex() == hashlib.sha256(b"").hexdigest()
    a, b = hashlib.sha256(b"\x00a").digest(), hashlib.sha256(b"\x00b").digest()
    assert merkle_root([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()


def test_clean_trail_verifies_with_checkpoints(audited: Platform) -> None:
    sizes = [c.size for _, c in read_checkpoints(audited.settings) if c]
    assert sizes == [4, 8, 12]
    assert _report(audited) == (None, None)
    made = create_checkpoint(audited, audited.admin())
    assert made.size == 13
    assert _report(audited) == (None, None)


def test_edited_row(audited: Platform) -> None:
    with _db(audited) as db:
        db.execute("UPDATE audit_records SET actor = 'mallory' WHERE seq = 6")
    assert _report(audited)[0] == 6


def test_deleted_row(audited: Platform) -> None:
    with _db(audited) as db:
        db.execute("DELETE FROM audit_records WHERE seq = 9")
    seq, problem = _report(audited)
    assert seq == 9 and "missing" in str(problem)


def test_reordered_rows(audited: Platform) -> None:
    with _db(audited) as db:
        db.execute("UPDATE audit_records SET seq = -1 WHERE seq = 3")
        db.execute("UPDATE audit_records SET seq = 3 WHERE seq = 4")
        db.execute("UPDATE audit_records SET seq = 4 WHERE seq = -1")
    assert _report(audited)[0] == 3


def test_truncated_tail_with_head_fixed_is_caught_by_checkpoint(audited: Platform) -> None:
    with _db(audited) as db:
        db.execute("DELETE FROM audit_records WHERE seq > 10")
        (record_hash,) = db.execute(
            "SELECT record_hash FROM audit_records WHERE seq = 10"
        ).fetchone()
        db.execute("UPDATE audit_head SET seq = 10, record_hash = ?", (record_hash,))
    seq, problem = _report(audited)
    assert seq == 11 and "truncated" in str(problem)


def test_truncated_tail_without_checkpoint_is_caught_by_head(audited: Platform) -> None:
    with _db(audited) as db:
        db.execute("DELETE FROM audit_records WHERE seq = 13")
    seq, problem = _report(audited)
    assert seq == 13 and "truncated" in str(problem)


def _rewrite_consistently(platform: Platform, seq: int) -> None:
    """What an attacker with database access does: edit, then re-chain every later hash."""
    engine = create_engine(platform.settings.resolved_metadata_url)
    with Session(engine) as session:
        prev = GENESIS_HASH
        for row in session.execute(select(AuditRecordRow).order_by(AuditRecordRow.seq)).scalars():
            if row.seq == seq:
                row.actor = "mallory"
            row.prev_hash = prev
            row.record_hash = chain_hash(prev, canonical_body(row))
            prev = row.record_hash
        head = session.get(AuditHeadRow, 1)
        assert head is not None
        head.record_hash = prev
        session.commit()
    engine.dispose()


def test_consistent_rewrite_passes_the_chain_but_not_the_checkpoints(audited: Platform) -> None:
    _rewrite_consistently(audited, 6)
    seq, problem = _report(audited)
    assert "checkpoint 2 (size 8) does not match" in str(problem)
    # Named as closely as the checkpoints resolve: after checkpoint 1, within checkpoint 2.
    assert seq == 5 and "records 5..8" in str(problem)


def test_consistent_rewrite_with_checkpoint_every_record_names_the_exact_seq(
    isolated_env: Path,
) -> None:
    settings = load_settings(home=isolated_env, security={"audit_checkpoint_every": 1})
    with init_home(settings) as platform:
        for index in range(6):
            create_project(platform, platform.admin(), f"q{index}")
        _rewrite_consistently(platform, 4)
        seq, problem = _report(platform)
    assert seq == 4 and "record 4" in str(problem)


def test_forged_or_shrinking_checkpoints(audited: Platform) -> None:
    path = checkpoints_path(audited.settings)
    original = path.read_bytes()
    lines = original.splitlines(keepends=True)
    doc = orjson.loads(lines[1])
    doc["root"] = "0" * 64
    path.write_bytes(lines[0] + orjson.dumps(doc) + b"\n" + b"".join(lines[2:]))
    assert "checkpoint 2 (size 8) is not signed by a trusted key" in str(_report(audited)[1])
    path.write_bytes(lines[1] + lines[0])
    assert "does not grow" in str(_report(audited)[1])
    path.write_bytes(original + b'{"torn": ')  # a writer killed mid-line: ignored
    assert _report(audited) == (None, None)


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_cli_verify_export_show(audited: Platform) -> None:
    home = audited.settings.home
    done = _ghaf(home, "audit", "verify")
    assert done.returncode == 0 and "audit trail valid: 13 records, 3" in done.stdout
    exported = _ghaf(home, "audit", "export", "--format", "jsonl")
    lines = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, 14))
    assert {"actor", "action", "resource", "outcome", "ts", "record_hash"} <= set(lines[0])
    shown = _ghaf(home, "audit", "show", "--resource", "project:p3")
    assert shown.returncode == 0 and "project.create" in shown.stdout
    bad = _ghaf(home, "audit", "export", "--format", "csv")
    assert bad.returncode == 3 and "--format 'csv' is not supported" in bad.stderr
    with _db(audited) as db:
        db.execute("UPDATE audit_records SET outcome = 'denied' WHERE seq = 7")
    broken = _ghaf(home, "audit", "verify")
    assert broken.returncode == 8
    assert "audit trail is broken at record 7" in broken.stderr
