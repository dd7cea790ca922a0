"""What an attacker with write access to the metadata database does to the audit trail.

Each tampering works on the SQLite file directly (no Ghaf code, no write guard), as a
database administrator would; the ``re-chain`` ones also recompute every later hash
and the head, so the chain alone verifies and only the signed checkpoints can tell.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ghaf.home import init_home
from ghaf.projects import create_project
from ghaf.security.audit import GENESIS_HASH, AuditEntry, AuditLog, canonical_body, chain_hash
from ghaf.security.audit_tables import AuditHeadRow, AuditRecordRow
from ghaf.settings import load_settings

NEWEST = 13
"""Records in a built home: ``home.init`` and twelve ``project.create``."""

POSITIONS = {"first": 1, "middle": 7, "last": 12, "newest": NEWEST}
KINDS = ("edit", "delete", "swap", "truncate", "rewrite", "reorder", "whole")
"""edit/delete/swap/truncate leave the chain broken; rewrite/reorder/whole re-chain it."""

_CONTENT = (
    "ts",
    "actor",
    "action",
    "resource",
    "project",
    "outcome",
    "source",
    "request_id",
    "details",
)


def build_home(home: Path, toml: str) -> None:
    """A home with 13 records, its settings in ``ghaf.toml``, closed (every record covered)."""
    home.mkdir(parents=True)
    (home / "ghaf.toml").write_text(toml)
    with init_home(load_settings(home=home)) as platform:
        for index in range(NEWEST - 1):
            create_project(platform, platform.admin(), f"p{index}")


def copy_home(pristine: Path, home: Path) -> Path:
    shutil.copytree(pristine, home)
    return home


def _sqlite(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "ghaf.db")


def _rechain(home: Path, change: Callable[[list[AuditRecordRow]], None]) -> None:
    engine = create_engine(f"sqlite:///{home / 'ghaf.db'}")
    with Session(engine) as session:
        rows = list(session.execute(select(AuditRecordRow).order_by(AuditRecordRow.seq)).scalars())
        change(rows)
        prev = GENESIS_HASH
        for row in rows:
            row.prev_hash = prev
            row.record_hash = chain_hash(prev, canonical_body(row))
            prev = row.record_hash
        head = session.get(AuditHeadRow, 1)
        assert head is not None
        head.record_hash = prev
        session.commit()
    engine.dispose()


def _swap_content(rows: list[AuditRecordRow], a: int, b: int) -> None:
    first, second = rows[a - 1], rows[b - 1]
    for name in _CONTENT:
        one, other = getattr(first, name), getattr(second, name)
        setattr(first, name, other)
        setattr(second, name, one)


def _pair(seq: int) -> tuple[int, int]:
    """The two neighbours a swap at ``seq`` exchanges (the newest swaps with the one before)."""
    return (seq - 1, seq) if seq == NEWEST else (seq, seq + 1)


def tamper(home: Path, kind: str, seq: int) -> tuple[int, int]:
    """Apply one tampering at record ``seq``; return the records the report must name.

    Returns:
        (first, last): the record (first == last) or the range a checkpoint per record
        names exactly.
    """
    if kind == "edit":
        with _sqlite(home) as db:
            db.execute("UPDATE audit_records SET actor = 'mallory' WHERE seq = ?", (seq,))
        return seq, seq
    if kind == "delete":
        with _sqlite(home) as db:
            db.execute("DELETE FROM audit_records WHERE seq = ?", (seq,))
        return seq, seq
    if kind == "swap":
        a, b = _pair(seq)
        with _sqlite(home) as db:
            db.execute("UPDATE audit_records SET seq = -1 WHERE seq = ?", (a,))
            db.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (a, b))
            db.execute("UPDATE audit_records SET seq = ? WHERE seq = -1", (b,))
        return a, a
    if kind == "truncate":
        with _sqlite(home) as db:
            db.execute("DELETE FROM audit_records WHERE seq >= ?", (seq,))
            row = db.execute(
                "SELECT record_hash FROM audit_records WHERE seq = ?", (seq - 1,)
            ).fetchone()
            db.execute(
                "UPDATE audit_head SET seq = ?, record_hash = ?",
                (seq - 1, row[0] if row else GENESIS_HASH),
            )
        return seq, NEWEST
    if kind == "rewrite":

        def edit(rows: list[AuditRecordRow]) -> None:
            rows[seq - 1].actor = "mallory"

        _rechain(home, edit)
        return seq, seq
    if kind == "reorder":
        a, b = _pair(seq)
        _rechain(home, lambda rows: _swap_content(rows, a, b))
        return a, a
    if kind == "whole":

        def every(rows: list[AuditRecordRow]) -> None:
            for row in rows:
                row.outcome = "allowed" if row.outcome != "allowed" else "denied"

        _rechain(home, every)
        return 1, 1
    raise AssertionError(kind)


def append_forged(home: Path, count: int, *, at: datetime | None = None) -> None:
    """Append ``count`` well-chained records behind the checkpoints' back (head updated)."""
    engine = create_engine(f"sqlite:///{home / 'ghaf.db'}")
    with Session(engine) as session:
        log = AuditLog()
        for index in range(count):
            entry = AuditEntry("mallory", "project.create", f"project:x{index}", "x", "allowed")
            log.append(session, entry, at=at)
        session.commit()
    engine.dispose()
