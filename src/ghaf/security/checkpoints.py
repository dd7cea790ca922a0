"""Signed audit checkpoints outside the database, and verification of the whole trail.

A checkpoint is ``{size, root, head}``: the RFC 6962 Merkle root over the leaf
hashes of records ``1..size`` and the chain hash of record ``size``, signed with
the home's ECDSA key and appended to ``<home>/audit/checkpoints.jsonl`` (a file a
database administrator cannot rewrite; ship it to write-once storage too).
Without checkpoints a consistent rewrite of the whole chain verifies; with them
it does not.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ghaf.errors import ConfigError, IntegrityError
from ghaf.metadata.base import utcnow
from ghaf.security.audit import GENESIS_HASH, canonical_body, chain_hash, leaf_hash
from ghaf.security.audit_tables import AuditHeadRow, AuditRecordRow
from ghaf.security.homekeys import (
    fingerprint,
    load_signing_key,
    public_key_path,
    signing_key_path,
    trusted_keys,
)
from ghaf.security.merkle import MerkleFrontier
from ghaf.settings import GhafSettings

FORMAT = "ghaf-audit-checkpoint/1"


def checkpoints_path(settings: GhafSettings) -> Path:
    """Where the home's checkpoints are appended, one JSON object per line."""
    return settings.home / "audit" / "checkpoints.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the audit log's state at ``size`` records."""

    size: int
    root: str
    head: str
    ts: str
    key: str
    frontier: list[list[int | str]]
    sig: str = ""

    def signed_body(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k != "sig"}
        return orjson.dumps({"format": FORMAT, **body}, option=orjson.OPT_SORT_KEYS)

    def to_line(self) -> bytes:
        return orjson.dumps({"format": FORMAT, **asdict(self)}, option=orjson.OPT_SORT_KEYS) + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> Checkpoint:
        doc = orjson.loads(line)
        if doc.pop("format") != FORMAT:
            raise ValueError("unknown checkpoint format")
        return cls(**doc)


def read_checkpoints(settings: GhafSettings) -> Iterator[tuple[int, Checkpoint | None]]:
    """(line number, checkpoint or None if malformed); a torn unterminated last line is skipped."""
    path = checkpoints_path(settings)
    if not path.exists():
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()  # written by a process killed mid-write: never acknowledged
    for number, line in enumerate(lines, 1):
        try:
            yield number, Checkpoint.parse(line)
        except (ValueError, TypeError):
            yield number, None


def last_checkpoint(settings: GhafSettings) -> Checkpoint | None:
    last = None
    for _, checkpoint in read_checkpoints(settings):
        last = checkpoint or last
    return last


class Checkpointer:
    """Writes a signed checkpoint every ``every`` records (and on demand)."""

    def __init__(self, settings: GhafSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.every = settings.security.audit_checkpoint_every
        self._last_size: int | None = None

    def after_append(self, seq: int) -> None:
        """Called after a commit that appended record ``seq``: checkpoint when due."""
        if self._last_size is None:
            last = last_checkpoint(self.settings)
            self._last_size = last.size if last else 0
        if seq - self._last_size >= self.every and signing_key_path(self.settings).exists():
            self.checkpoint()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Path]:
        path = checkpoints_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (path.parent / ".checkpoints.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield path

    def checkpoint(self) -> Checkpoint:
        """Sign and append a checkpoint at the current head (or return the last if current).

        Raises:
            IntegrityError: a record since the last checkpoint does not verify; a
                checkpoint is never signed over a broken chain.
            ConfigError: the home has no signing key.
        """
        key = load_signing_key(self.settings)
        with self._locked() as path:
            last = last_checkpoint(self.settings)
            with Session(self.engine) as session:
                head = session.get(AuditHeadRow, 1)
                head_seq = head.seq if head is not None else 0
                if last is not None and head_seq <= last.size:
                    self._last_size = last.size
                    return last
                if last is None:
                    frontier, prev = MerkleFrontier(), GENESIS_HASH
                else:
                    frontier, prev = MerkleFrontier.from_json(last.size, last.frontier), last.head
                rows = session.execute(
                    select(AuditRecordRow)
                    .where(AuditRecordRow.seq > frontier.size, AuditRecordRow.seq <= head_seq)
                    .order_by(AuditRecordRow.seq)
                    .execution_options(yield_per=1000)
                ).scalars()
                for row in rows:
                    body = canonical_body(row)
                    expected = frontier.size + 1
                    if row.seq != expected or chain_hash(prev, body) != row.record_hash:
                        raise IntegrityError(
                            f"audit record {expected} does not verify; no checkpoint was signed",
                            hint="run `ghaf audit verify` to see what was changed",
                        )
                    frontier.append(leaf_hash(body))
                    prev = row.record_hash
                session.rollback()
            if frontier.size != head_seq:
                raise IntegrityError(
                    f"audit log ends at record {frontier.size}, its head says {head_seq}",
                    hint="run `ghaf audit verify`",
                )
            checkpoint = _sign(key, frontier, prev, self.settings)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, checkpoint.to_line())  # one write: a kill cannot tear it midway
                os.fsync(fd)
            finally:
                os.close(fd)
            self._last_size = checkpoint.size
            return checkpoint


def _sign(
    key: ec.EllipticCurvePrivateKey, frontier: MerkleFrontier, head: str, settings: GhafSettings
) -> Checkpoint:
    unsigned = Checkpoint(
        size=frontier.size,
        root=frontier.root().hex(),
        head=head,
        ts=utcnow().isoformat(),
        key=fingerprint(public_key_path(settings).read_bytes()),
        frontier=frontier.to_json(),
    )
    signature = key.sign(unsigned.signed_body(), ec.ECDSA(hashes.SHA256()))
    return Checkpoint(**{**asdict(unsigned), "sig": base64.b64encode(signature).decode()})


@dataclass(frozen=True)
class AuditReport:
    """What ``ghaf audit verify`` found."""

    records: int
    checkpoints: int
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _trusted(settings: GhafSettings) -> dict[str, ec.EllipticCurvePublicKey]:
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for path in trusted_keys(settings):
        pem = path.read_bytes()
        key = serialization.load_pem_public_key(pem)
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys[fingerprint(pem)] = key
    return keys


def _check_signatures(settings: GhafSettings) -> tuple[list[Checkpoint], AuditReport | None]:
    trusted = _trusted(settings)
    checkpoints: list[Checkpoint] = []
    for number, checkpoint in read_checkpoints(settings):
        if checkpoint is None:
            return checkpoints, AuditReport(
                0, number, None, f"checkpoint line {number} is malformed"
            )
        key = trusted.get(checkpoint.key)
        try:
            if key is None:
                raise InvalidSignature
            key.verify(
                base64.b64decode(checkpoint.sig),
                checkpoint.signed_body(),
                ec.ECDSA(hashes.SHA256()),
            )
        except (InvalidSignature, ValueError):
            problem = (
                f"checkpoint {number} (size {checkpoint.size}) is not signed by a trusted key "
                "(forged or altered)"
            )
            return checkpoints, AuditReport(0, number, None, problem)
        if checkpoints and checkpoint.size <= checkpoints[-1].size:
            problem = f"checkpoint {number} (size {checkpoint.size}) does not grow the log"
            return checkpoints, AuditReport(0, number, None, problem)
        checkpoints.append(checkpoint)
    return checkpoints, None


def _rewritten_range(ours: MerkleFrontier, theirs: Checkpoint, after: int) -> tuple[int, int]:
    signed = MerkleFrontier.from_json(theirs.size, theirs.frontier)
    for (start, end), mine, good in zip(ours.ranges(), ours.nodes, signed.nodes, strict=False):
        if mine != good:
            return max(start, after + 1), end
    return after + 1, theirs.size


def verify_audit(settings: GhafSettings, session: Session) -> AuditReport:
    """Recompute the chain and the Merkle roots; check every checkpoint and the head.

    Returns the first bad sequence number and what is wrong with it, or a clean report.
    """
    checkpoints, bad = _check_signatures(settings)
    if bad is not None:
        return bad
    pending = iter(enumerate(checkpoints, 1))
    upcoming = next(pending, None)
    frontier = MerkleFrontier()
    prev = GENESIS_HASH
    previous_size = 0

    def fail(seq: int, problem: str) -> AuditReport:
        return AuditReport(frontier.size, len(checkpoints), seq, problem)

    rows = session.execute(
        select(AuditRecordRow).order_by(AuditRecordRow.seq).execution_options(yield_per=1000)
    ).scalars()
    for row in rows:
        expected = frontier.size + 1
        if row.seq != expected:
            return fail(expected, f"record {expected} is missing (deleted or renumbered)")
        body = canonical_body(row)
        if row.prev_hash != prev or chain_hash(prev, body) != row.record_hash:
            return fail(row.seq, f"record {row.seq} was altered or moved: its hash does not chain")
        frontier.append(leaf_hash(body))
        prev = row.record_hash
        while upcoming is not None and upcoming[1].size == frontier.size:
            number, checkpoint = upcoming
            if frontier.root().hex() != checkpoint.root or prev != checkpoint.head:
                start, end = _rewritten_range(frontier, checkpoint, previous_size)
                where = f"record {start}" if start == end else f"records {start}..{end}"
                return fail(
                    start,
                    f"checkpoint {number} (size {checkpoint.size}) does not match: the chain "
                    f"was rewritten; the first rewritten record is among {where}",
                )
            previous_size = checkpoint.size
            upcoming = next(pending, None)
    count = frontier.size
    if upcoming is not None:
        number, checkpoint = upcoming
        return fail(
            count + 1,
            f"checkpoint {number} covers {checkpoint.size} records but the log has only "
            f"{count}: the tail was truncated",
        )
    head = session.get(AuditHeadRow, 1)
    if head is not None and (head.seq != count or head.record_hash != prev):
        return fail(
            count + 1,
            f"the chain head says {head.seq} records, the log has {count}: the tail was truncated",
        )
    return AuditReport(count, len(checkpoints))


def export_records(session: Session, *, resource: str | None = None) -> Iterator[bytes]:
    """Each record as one JSON line (for a SIEM), hashes included, in sequence order."""
    query = select(AuditRecordRow).order_by(AuditRecordRow.seq)
    if resource is not None:
        query = query.where(AuditRecordRow.resource == resource)
    for row in session.execute(query.execution_options(yield_per=1000)).scalars():
        doc: dict[str, Any] = orjson.loads(canonical_body(row))
        doc["prev_hash"] = row.prev_hash
        doc["record_hash"] = row.record_hash
        yield orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n"


def require_signing_key(settings: GhafSettings) -> None:
    if not signing_key_path(settings).exists():
        raise ConfigError(f"no signing key at {signing_key_path(settings)}", hint="run `ghaf init`")
