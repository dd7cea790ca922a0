"""The audit trail: append one hash-chained record per operation, read and verify the chain."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.security.audit_tables import AuditHeadRow, AuditRecordRow

Outcome = Literal["allowed", "denied", "failed"]
GENESIS_HASH = "0" * 64
_LAST_SEQ = "ghaf_audit_last_seq"
_log = get_logger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    """What happened, before it is given a sequence number and a hash."""

    actor: str
    action: str
    resource: str
    project: str
    outcome: Outcome
    source: str | None = None
    request_id: str | None = None
    details: dict[str, Any] | None = None


def canonical_body(row: AuditRecordRow) -> bytes:
    """The canonical JSON of a record's content (everything but the hashes)."""
    body = {
        "seq": row.seq,
        "ts": row.ts.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "resource": row.resource,
        "project": row.project,
        "outcome": row.outcome,
        "source": row.source,
        "request_id": row.request_id,
        "details": orjson.loads(row.details),
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def leaf_hash(body: bytes) -> bytes:
    """RFC 6962 leaf hash of a record body."""
    return hashlib.sha256(b"\x00" + body).digest()


def chain_hash(prev_hash_hex: str, body: bytes) -> str:
    """``SHA-256(prev_hash || leaf_hash(body))`` as hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash_hex) + leaf_hash(body)).hexdigest()


class CheckpointHook(Protocol):
    """Told after each commit that appended records (see ``ghaf.security.checkpoints``)."""

    def after_append(self, seq: int) -> None: ...

    def close(self) -> None:
        """Cover what was appended and stop any timer (the platform is closing)."""
        ...


class AuditLog:
    """Appends records inside the caller's transaction, under a lock on the head row."""

    def __init__(self, checkpoints: CheckpointHook | None = None) -> None:
        self.checkpoints = checkpoints

    def close(self) -> None:
        """Let the checkpointer cover the records appended through this log."""
        if self.checkpoints is not None:
            self.checkpoints.close()

    def _after_commit(self, session: Session) -> None:
        seq = session.info.pop(_LAST_SEQ, None)
        if self.checkpoints is None or seq is None:
            return
        try:
            self.checkpoints.after_append(seq)
        except Exception as exc:  # noqa: BLE001 - the operation is committed; say, don't fail
            _log.warning("audit checkpoint failed", error=f"{type(exc).__name__}: {exc}")

    def append(self, session: Session, entry: AuditEntry, *, at: datetime | None = None) -> int:
        """Append ``entry`` and return its sequence number (gapless, in commit order)."""
        head = session.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one()  # the genesis head row is created by the first migration
        row = AuditRecordRow(
            seq=head.seq + 1,
            ts=at or utcnow(),
            actor=entry.actor,
            action=entry.action,
            resource=entry.resource,
            project=entry.project,
            outcome=entry.outcome,
            source=entry.source,
            request_id=entry.request_id,
            details=orjson.dumps(entry.details or {}, option=orjson.OPT_SORT_KEYS).decode(),
            prev_hash=head.record_hash,
        )
        row.record_hash = chain_hash(head.record_hash, canonical_body(row))
        session.add(row)
        head.seq = row.seq
        head.record_hash = row.record_hash
        session.flush()
        if self.checkpoints is not None:
            if _LAST_SEQ not in session.info:
                event.listen(session, "after_commit", self._after_commit, once=True)
            session.info[_LAST_SEQ] = row.seq
        return row.seq

    def records(
        self,
        session: Session,
        *,
        resource: str | None = None,
        actions: Collection[str] | None = None,
        outcome: str | None = None,
    ) -> Iterator[AuditRecordRow]:
        """Records in sequence order, optionally of one resource, some actions, one outcome."""
        query = select(AuditRecordRow).order_by(AuditRecordRow.seq)
        if resource is not None:
            query = query.where(AuditRecordRow.resource == resource)
        if actions is not None:
            query = query.where(AuditRecordRow.action.in_(sorted(actions)))
        if outcome is not None:
            query = query.where(AuditRecordRow.outcome == outcome)
        yield from session.execute(query.execution_options(yield_per=1000)).scalars()

    def first_broken(self, session: Session) -> int | None:
        """The sequence number of the first record that does not verify, or None."""
        prev = GENESIS_HASH
        expected_seq = 1
        for row in self.records(session):
            if row.seq != expected_seq or row.prev_hash != prev:
                return expected_seq if row.seq != expected_seq else row.seq
            if chain_hash(prev, canonical_body(row)) != row.record_hash:
                return row.seq
            prev = row.record_hash
            expected_seq += 1
        head = session.get(AuditHeadRow, 1)
        if head is not None and (head.seq != expected_seq - 1 or head.record_hash != prev):
            return expected_seq
        return None


def export_records(
    session: Session,
    *,
    resource: str | None = None,
    project: str | None = None,
    after: int = 0,
    limit: int | None = None,
) -> Iterator[bytes]:
    """Each record as one JSON line (for a SIEM), hashes included, in sequence order.

    ``project``: only that project's records; ``after``/``limit``: records with a
    sequence number above ``after``, at most ``limit`` of them (paging an export).
    """
    query = select(AuditRecordRow).where(AuditRecordRow.seq > after).order_by(AuditRecordRow.seq)
    if resource is not None:
        query = query.where(AuditRecordRow.resource == resource)
    if project is not None:
        query = query.where(AuditRecordRow.project == project)
    if limit is not None:
        query = query.limit(limit)
    for row in session.execute(query.execution_options(yield_per=1000)).scalars():
        doc: dict[str, Any] = orjson.loads(canonical_body(row))
        doc["prev_hash"] = row.prev_hash
        doc["record_hash"] = row.record_hash
        yield orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n"
