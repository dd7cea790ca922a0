"""``ghaf audit verify``: the chain, its signed checkpoints, their copies and the unprotected tail.

Every problem is named by the record (``seq``) or the range of records it concerns,
or by the checkpoint line or copy; records after the newest checkpoint are a
warning while younger than the checkpoint interval plus slack and a failure after.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from ghaf.artifacts.base import BlobStore
from ghaf.metadata.base import utcnow
from ghaf.security.audit import GENESIS_HASH, canonical_body, chain_hash, leaf_hash
from ghaf.security.audit_tables import AuditHeadRow, AuditRecordRow
from ghaf.security.checkpoints import (
    COPY_PREFIX,
    Checkpoint,
    StoredCheckpoint,
    checkpoints_path,
    copy_key,
    read_copies,
    read_log,
)
from ghaf.security.homekeys import fingerprint, trusted_keys
from ghaf.security.merkle import MerkleFrontier
from ghaf.settings import GhafSettings

_RESTORE = "restore the metadata database from a backup and investigate who changed it"
_LOG_HINT = (
    f"restore audit/checkpoints.jsonl from the copies under {COPY_PREFIX} in the artifact "
    "store (one line each, in key order) and investigate who changed it"
)


@dataclass(frozen=True)
class Finding:
    """One problem: what is wrong and the record or range of records it concerns."""

    message: str
    seq: int | None = None
    """The first bad record, when one record is named."""
    span: tuple[int, int] | None = None
    """The first and last record of a range (inclusive), when a range is named."""
    broken: bool = True
    """False: a warning (records not protected yet, within the checkpoint interval)."""
    hint: str = _RESTORE

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": "error" if self.broken else "warning",
            "seq": self.seq,
            "range": list(self.span) if self.span else None,
            "message": self.message,
        }


@dataclass(frozen=True)
class AuditReport:
    """What ``ghaf audit verify`` found."""

    records: int
    checkpoints: int
    copies: int | None = None
    """Checkpoint copies in the artifact store (None: not compared)."""
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def status(self) -> Literal["valid", "pending", "broken"]:
        """valid; pending (valid, but the newest records are not protected yet); broken."""
        if self.failures:
            return "broken"
        return "pending" if self.findings else "valid"

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.broken)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.broken)

    @property
    def first_bad_seq(self) -> int | None:
        """The first record the first failure names (a range's start), if it names one."""
        first = self.failures[0] if self.failures else None
        if first is None:
            return None
        return first.seq if first.seq is not None else (first.span[0] if first.span else None)

    @property
    def problem(self) -> str | None:
        return self.failures[0].message if self.failures else None

    @property
    def headline(self) -> str:
        """One line naming the first failure (or the state when there is none)."""
        if not self.failures:
            return f"audit trail {self.status}: {self.records} records"
        first = self.failures[0]
        where = f" at record {first.seq}" if first.seq is not None else ""
        return f"audit trail is broken{where}: {first.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "copies": self.copies,
            "findings": [f.to_json() for f in self.findings],
        }


def _records(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}..{last}"


def _are(first: int, last: int) -> str:
    return f"{_records(first, last)} {'is' if first == last else 'are'}"


def _span(first: int, last: int) -> dict[str, Any]:
    return {"seq": first} if first == last else {"span": (first, last)}


def _trusted(settings: GhafSettings) -> dict[str, ec.EllipticCurvePublicKey]:
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for path in trusted_keys(settings):
        pem = path.read_bytes()
        key = serialization.load_pem_public_key(pem)
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys[fingerprint(pem)] = key
    return keys


def _signed_by(checkpoint: Checkpoint, trusted: dict[str, ec.EllipticCurvePublicKey]) -> bool:
    key = trusted.get(checkpoint.key)
    try:
        if key is None:
            return False
        key.verify(
            base64.b64decode(checkpoint.sig), checkpoint.signed_body(), ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _valid(
    stored: list[StoredCheckpoint], trusted: dict[str, ec.EllipticCurvePublicKey]
) -> tuple[list[tuple[StoredCheckpoint, Checkpoint]], list[Finding]]:
    """The well-formed, signed checkpoints, and a finding for every other one."""
    good: list[tuple[StoredCheckpoint, Checkpoint]] = []
    findings: list[Finding] = []
    for entry in stored:
        checkpoint = entry.checkpoint
        if checkpoint is None:
            findings.append(Finding(f"checkpoint {entry.where} is malformed", hint=_LOG_HINT))
        elif entry.key and entry.key != copy_key(checkpoint.size, entry.line):
            findings.append(
                Finding(f"checkpoint {entry.where} does not match its key: it was altered")
            )
        elif not _signed_by(checkpoint, trusted):
            findings.append(
                Finding(
                    f"checkpoint {entry.where} (size {checkpoint.size}) is not signed by a "
                    "trusted key (forged or altered)",
                    hint=_LOG_HINT,
                )
            )
        else:
            good.append((entry, checkpoint))
    return good, findings


def _growth(log: list[tuple[StoredCheckpoint, Checkpoint]]) -> list[Finding]:
    for (_, before), (entry, checkpoint) in pairwise(log):
        if checkpoint.size <= before.size:
            return [
                Finding(
                    f"checkpoint {entry.where} (size {checkpoint.size}) does not grow the log: "
                    f"the line before it covers {before.size} records",
                    hint=_LOG_HINT,
                )
            ]
    return []


def _rewritten_range(ours: MerkleFrontier, theirs: Checkpoint, after: int) -> tuple[int, int]:
    signed = MerkleFrontier.from_json(theirs.size, theirs.frontier)
    for (start, end), mine, good in zip(ours.ranges(), ours.nodes, signed.nodes, strict=False):
        if mine != good:
            return max(start, after + 1), end
    return after + 1, theirs.size


@dataclass
class _Walk:
    """The result of recomputing the chain against every signed checkpoint."""

    count: int = 0
    head_hash: str = GENESIS_HASH
    finding: Finding | None = None
    uncovered_since: datetime | None = None
    """The time of the first record after the newest checkpoint."""


def _walk(session: Session, checkpoints: dict[int, list[tuple[str, Checkpoint]]]) -> _Walk:
    protected = max(checkpoints, default=0)
    frontier = MerkleFrontier()
    walk = _Walk()
    matched = 0
    rows = session.execute(
        select(AuditRecordRow).order_by(AuditRecordRow.seq).execution_options(yield_per=1000)
    ).scalars()
    for row in rows:
        expected = frontier.size + 1
        if row.seq != expected:
            walk.finding = Finding(
                f"record {expected} is missing (deleted or renumbered)", seq=expected
            )
            return walk
        body = canonical_body(row)
        if row.prev_hash != walk.head_hash or chain_hash(walk.head_hash, body) != row.record_hash:
            walk.finding = Finding(
                f"record {row.seq} was altered or moved: its hash does not chain", seq=row.seq
            )
            return walk
        frontier.append(leaf_hash(body))
        walk.head_hash = row.record_hash
        walk.count = frontier.size
        if row.seq == protected + 1:
            walk.uncovered_since = row.ts
        for where, checkpoint in checkpoints.get(frontier.size, ()):
            if frontier.root().hex() != checkpoint.root or walk.head_hash != checkpoint.head:
                first, last = _rewritten_range(frontier, checkpoint, matched)
                walk.finding = Finding(
                    f"checkpoint {where} (size {checkpoint.size}) does not match the records: "
                    f"the chain was rewritten {'at' if first == last else 'within'} "
                    f"{_records(first, last)}",
                    **_span(first, last),
                )
                return walk
        if frontier.size in checkpoints:
            matched = frontier.size
    return walk


def _ends(
    session: Session, walk: _Walk, checkpoints: dict[int, list[tuple[str, Checkpoint]]]
) -> list[Finding]:
    """Records missing from the end: beyond a checkpoint, or beyond what the head says."""
    count = walk.count
    beyond = max(checkpoints, default=0)
    if beyond > count:
        where, _ = checkpoints[beyond][0]
        return [
            Finding(
                f"{_are(count + 1, beyond)} missing: the tail was truncated "
                f"(checkpoint {where} covers {beyond} records, the log has {count})",
                **_span(count + 1, beyond),
            )
        ]
    head = session.get(AuditHeadRow, 1)
    if head is None or (head.seq == count and head.record_hash == walk.head_hash):
        return []
    if head.seq > count:
        return [
            Finding(
                f"{_are(count + 1, head.seq)} missing: the chain head says {head.seq} "
                f"records, the log has {count} (the tail was truncated)",
                **_span(count + 1, head.seq),
            )
        ]
    if head.seq < count:
        return [
            Finding(
                f"the chain head says {head.seq} records but the log has {count}: "
                f"{_are(head.seq + 1, count)} beyond the head",
                **_span(head.seq + 1, count),
            )
        ]
    return [Finding(f"the chain head does not match record {count}: it was rewritten", seq=count)]


def _tail(settings: GhafSettings, walk: _Walk, protected: int, now: datetime) -> list[Finding]:
    """Records after the newest checkpoint: a warning while young, a failure once old."""
    if walk.count <= protected or walk.uncovered_since is None:
        return []
    first, last = protected + 1, walk.count
    interval = settings.security.audit_checkpoint_seconds
    slack = settings.security.audit_checkpoint_slack_seconds
    age = (now - walk.uncovered_since).total_seconds()
    after = (
        f"after the last checkpoint (size {protected})"
        if protected
        else "not covered by any checkpoint"
    )
    said = f"{_are(first, last)} {after}"
    if age < -slack:
        return [
            Finding(
                f"{said}, and record {first} is dated {-age:.0f} s in the future",
                **_span(first, last),
            )
        ]
    if age <= interval + slack:
        return [
            Finding(
                f"{said}: not protected yet (record {first} is {age:.1f} s old; "
                f"checkpoints come every {interval:g} s)",
                **_span(first, last),
                broken=False,
            )
        ]
    return [
        Finding(
            f"{said}, and record {first} is {age:.0f} s old, past the {interval:g} s checkpoint "
            f"interval (+{slack:g} s slack): checkpoints should have covered "
            f"{'it' if first == last else 'them'}",
            **_span(first, last),
            hint="a writer was killed or could not sign (see its log), or checkpoints were "
            "removed; if no record was changed, `ghaf audit checkpoint` covers them",
        )
    ]


def _compare(
    settings: GhafSettings,
    log: list[StoredCheckpoint] | None,
    ours: list[tuple[StoredCheckpoint, Checkpoint]],
    theirs: list[tuple[StoredCheckpoint, Checkpoint]] | None,
    records: int,
    now: datetime,
) -> list[Finding]:
    """The log against its copies (None: not compared): missing, emptied, shorter, a line
    gone, differing, not copied."""
    path = checkpoints_path(settings)
    compared = theirs is not None
    theirs = theirs or []
    copied = {entry.digest for entry, _ in theirs}
    logged = {entry.digest for entry, _ in ours}
    copy_sizes = {checkpoint.size for _, checkpoint in theirs}
    log_max = max((c.size for _, c in ours), default=0)
    copy_max = max(copy_sizes, default=0)
    held = f"the artifact store holds {len(theirs)} copies up to size {copy_max}"
    if not log and (records or theirs):
        state = (
            f"there is no checkpoint log at {path}"
            if log is None
            else f"the checkpoint log {path} is empty"
        )
        also = held if theirs else "no copy is in the artifact store either"
        if not compared:
            also = "its copies were not compared"
        return [
            Finding(
                f"{state}, but the home has {records} records and {also}",
                span=(1, copy_max) if copy_max else None,
                hint=_LOG_HINT,
            )
        ]
    findings = []
    if copy_max > log_max:
        findings.append(
            Finding(
                f"the checkpoint log is shorter than its copy: it ends at size {log_max}, {held}; "
                f"the checkpoints over {_records(log_max + 1, copy_max)} were removed from "
                f"{path.name}",
                span=(log_max + 1, copy_max),
                hint=_LOG_HINT,
            )
        )
    for entry, checkpoint in theirs:
        if entry.digest in logged or checkpoint.size > log_max:
            continue
        same = [e.where for e, c in ours if c.size == checkpoint.size]
        message = (
            f"the checkpoint of size {checkpoint.size} differs between {same[0]} and its "
            f"{entry.where}"
            if same
            else f"the checkpoint of size {checkpoint.size} ({entry.where}) is missing from "
            "the log: a line was deleted"
        )
        findings.append(Finding(message, hint=_LOG_HINT))
    grace = (
        settings.security.audit_checkpoint_seconds
        + settings.security.audit_checkpoint_slack_seconds
    )
    for entry, checkpoint in ours if compared else []:
        if entry.digest in copied or checkpoint.size in copy_sizes:
            continue
        age = (now - checkpoint.when).total_seconds()
        if checkpoint.size == log_max and age <= grace:  # signed, not copied yet
            findings.append(
                Finding(
                    f"checkpoint {entry.where} (size {checkpoint.size}) is not in the artifact "
                    f"store yet (signed {age:.1f} s ago)",
                    broken=False,
                )
            )
            continue
        findings.append(
            Finding(
                f"checkpoint {entry.where} (size {checkpoint.size}) has no copy in the "
                "artifact store",
                hint="if this home's checkpoints predate the copies, `ghaf audit checkpoint` "
                f"copies them; otherwise a copy was deleted from {COPY_PREFIX}",
            )
        )
    return findings


def verify_audit(
    settings: GhafSettings,
    session: Session,
    *,
    copies: BlobStore | None = None,
    now: datetime | None = None,
) -> AuditReport:
    """Recompute the chain and the Merkle roots against every signed checkpoint.

    Args:
        settings: the home (checkpoint log, trusted keys, interval and slack).
        session: a read session on the metadata store.
        copies: the blob store holding the checkpoint copies; None skips comparing them.
        now: the current time (tests pass their own).

    Returns:
        Every finding: the first bad record, a truncated range, log and copy problems,
        and the unprotected tail.
    """
    now = now or utcnow()
    trusted = _trusted(settings)
    log = read_log(settings)
    ours, findings = _valid(log or [], trusted)
    findings += _growth(ours)
    theirs: list[tuple[StoredCheckpoint, Checkpoint]] = []
    if copies is not None:
        theirs, bad_copies = _valid(read_copies(copies), trusted)
        findings += bad_copies
    by_size: dict[int, list[tuple[str, Checkpoint]]] = defaultdict(list)
    seen: set[str] = set()
    for entry, checkpoint in [*ours, *theirs]:
        if entry.digest not in seen:
            seen.add(entry.digest)
            by_size[checkpoint.size].append((entry.where, checkpoint))
    walk = _walk(session, by_size)
    if walk.finding is not None:
        records = [walk.finding]
    else:
        records = _ends(session, walk, by_size) or _tail(
            settings, walk, max(by_size, default=0), now
        )
    findings += _compare(
        settings, log, ours, theirs if copies is not None else None, walk.count, now
    )
    # Records first (they name a seq or a range), then the log, then the tail's warning.
    ordered = [f for f in records if f.broken] + findings + [f for f in records if not f.broken]
    return AuditReport(
        walk.count, len(ours), len(theirs) if copies is not None else None, tuple(ordered)
    )
