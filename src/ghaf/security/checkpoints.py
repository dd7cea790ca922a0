"""Signed audit checkpoints, written often, from init, to a log file and a write-once copy.

A checkpoint is ``{size, root, head}``: the RFC 6962 Merkle root over the leaf
hashes of records ``1..size`` and the chain hash of record ``size``, signed with
the home's ECDSA key. Without checkpoints a consistent rewrite of the whole chain
verifies; with them only the records after the newest checkpoint (the unprotected
tail) can be changed unnoticed, so the tail is kept to seconds:

- after each commit that appended records, a checkpoint is signed when
  ``audit_checkpoint_every`` records are uncovered or the newest checkpoint is
  ``audit_checkpoint_seconds`` old; otherwise a one-shot timer signs one when it
  becomes that old (long-running servers), and closing the platform or leaving the
  process covers the rest (short CLI processes need no background work);
- ``ghaf init`` signs the first, so a new home is covered from record 1.

Every checkpoint is kept in two places that a metadata database writer cannot reach:
``<home>/audit/checkpoints.jsonl`` (one line each, appended and fsynced) and the
artifact store, under ``audit/checkpoints/<size>-<sha256 of the line>.json``. The
copy's key is derived from its content and a blob commit never replaces an
existing key, so truncating or deleting the log leaves the copy longer than it, and
``ghaf audit verify`` says so. The artifact store rather than the event bus: it is
durable in both columns of the backend table (the embedded bus is process memory),
and on S3 a retention rule (Object Lock) on the prefix makes it write-once for the
platform's own credentials too.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ghaf.artifacts.base import BlobStore
from ghaf.errors import IntegrityError, NotFoundError
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.security.audit import GENESIS_HASH, canonical_body, chain_hash, leaf_hash
from ghaf.security.audit_tables import AuditHeadRow, AuditRecordRow
from ghaf.security.merkle import MerkleFrontier
from ghaf.settings import GhafSettings

if TYPE_CHECKING:  # cryptography and the home's keys load when a checkpoint is signed
    from cryptography.hazmat.primitives.asymmetric import ec

FORMAT = "ghaf-audit-checkpoint/1"
COPY_PREFIX = "audit/checkpoints/"
"""Where the write-once copies live in the artifact store."""

_NEVER = datetime.min.replace(tzinfo=UTC)
_log = get_logger(__name__)


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

    @property
    def when(self) -> datetime:
        """When it was signed (the signed ``ts``)."""
        return datetime.fromisoformat(self.ts)

    @classmethod
    def parse(cls, line: bytes) -> Checkpoint:
        """Parse one line; ``ValueError`` when it is not a well-formed checkpoint."""
        doc = orjson.loads(line)
        if not isinstance(doc, dict) or doc.pop("format", None) != FORMAT:
            raise ValueError("unknown checkpoint format")
        checkpoint = cls(**doc)
        strings = (checkpoint.root, checkpoint.head, checkpoint.ts, checkpoint.key, checkpoint.sig)
        if (
            type(checkpoint.size) is not int
            or checkpoint.size < 0
            or not all(isinstance(s, str) for s in strings)
            or not isinstance(checkpoint.frontier, list)
        ):
            raise ValueError("checkpoint fields have the wrong types")
        checkpoint.when  # noqa: B018 - a ts that is not ISO 8601 is malformed
        return checkpoint


@dataclass(frozen=True)
class StoredCheckpoint:
    """One stored checkpoint: where it is, its exact bytes, and the parsed checkpoint."""

    where: str
    """``log line N`` or ``copy <key>``: how a report names it."""
    line: bytes
    checkpoint: Checkpoint | None
    """None when the bytes are not a well-formed checkpoint."""
    key: str = ""
    """The copy's key in the artifact store ("" for a log line)."""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.line).hexdigest()


def copy_key(size: int, line: bytes) -> str:
    """The write-once key of a checkpoint's copy: its size and the SHA-256 of its line."""
    return f"{COPY_PREFIX}{size:012d}-{hashlib.sha256(line).hexdigest()}.json"


def _parse(where: str, line: bytes, key: str = "") -> StoredCheckpoint:
    try:
        return StoredCheckpoint(where, line, Checkpoint.parse(line), key)
    except (ValueError, TypeError):
        return StoredCheckpoint(where, line, None, key)


def read_log(settings: GhafSettings) -> list[StoredCheckpoint] | None:
    """Every line of the checkpoint log (None when there is no log file).

    An unterminated last line is skipped: a line is written with one ``write``, so only
    a crash of the machine leaves one, and it was never acknowledged.
    """
    try:
        data = checkpoints_path(settings).read_bytes()
    except FileNotFoundError:
        return None
    lines = data.split(b"\n")
    lines.pop()  # "" after the final newline, or a torn fragment
    return [_parse(f"log line {n}", line + b"\n") for n, line in enumerate(lines, 1)]


def read_checkpoints(settings: GhafSettings) -> Iterator[tuple[int, Checkpoint | None]]:
    """(line number, checkpoint or None if malformed) for each line of the log."""
    for number, stored in enumerate(read_log(settings) or [], 1):
        yield number, stored.checkpoint


def read_copies(copies: BlobStore) -> list[StoredCheckpoint]:
    """Every checkpoint copy in the artifact store, in size order (its key's order)."""
    found = []
    for key in sorted(copies.keys(COPY_PREFIX)):
        with contextlib.suppress(NotFoundError), copies.open_read(key) as handle:
            found.append(_parse(f"copy {key}", handle.read(), key))
    return found


def _tail(path: Path) -> tuple[bytes | None, int]:
    """The log's last complete line (None if it has none) and the length of a torn end."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None, 0
    with handle:
        end = handle.seek(0, os.SEEK_END)
        pos, buf = end, b""
        while pos > 0:
            step = min(1 << 14, pos)
            pos -= step
            handle.seek(pos)
            buf = handle.read(step) + buf
            last = buf.rfind(b"\n")
            if last == -1:
                continue
            before = buf.rfind(b"\n", 0, last)
            if before != -1 or pos == 0:
                return buf[before + 1 : last + 1], len(buf) - last - 1
        return None, end


def last_checkpoint(settings: GhafSettings) -> Checkpoint | None:
    """The newest checkpoint in the log, read from its end."""
    line, _ = _tail(checkpoints_path(settings))
    return _parse("log", line).checkpoint if line else None


def _warn(event: str, exc: Exception) -> None:
    # At exit, or after a test runner swapped it, stderr may be closed: say it if we can.
    with contextlib.suppress(ValueError, OSError):
        _log.warning(event, error=f"{type(exc).__name__}: {exc}")


_OPEN: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


@atexit.register
def _close_open() -> None:
    """A process that never closed its platform still covers what it appended."""
    for checkpointer in list(_OPEN):
        checkpointer.close()


class Checkpointer:
    """Signs checkpoints when due (every N records or T seconds), on demand and at close.

    Args:
        settings: the home's settings (interval, count, paths, keys).
        engine: the metadata engine holding the audit records.
        copies: opens the blob store that keeps the write-once copies (the artifact
            store); None keeps the log only.
        clock: the current time; tests pass their own.
    """

    def __init__(
        self,
        settings: GhafSettings,
        engine: Engine,
        *,
        copies: Callable[[], BlobStore] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.every = settings.security.audit_checkpoint_every
        self.interval = settings.security.audit_checkpoint_seconds
        self.clock = clock
        self._open_copies = copies
        self._copies: BlobStore | None = None
        self._lock = threading.Lock()
        self._newest: tuple[int, datetime] | None = None  # (size, signed at) as last seen
        self._appended = 0  # the newest record this process appended
        self._written = 0  # the largest size this process signed: the log may not shrink below
        self._timer: threading.Timer | None = None
        self._closed = False
        self._pid = os.getpid()
        _OPEN.add(self)

    def copy_store(self) -> BlobStore | None:
        """The blob store holding the copies (opened on first use), or None."""
        if self._copies is None and self._open_copies is not None:
            self._copies = self._open_copies()
        return self._copies

    def after_append(self, seq: int) -> None:
        """Called after a commit that appended record ``seq``: checkpoint when due."""
        with self._lock:
            self._appended = max(self._appended, seq)
            if self._newest is None:
                last = last_checkpoint(self.settings)
                self._newest = (last.size, last.when) if last else (0, _NEVER)
            size, signed_at = self._newest
            now = self.clock()
            age = (now - signed_at).total_seconds()
        if seq - size >= self.every or age >= self.interval:
            if _signing_key_exists(self.settings):  # not before `ghaf init` made it
                self.checkpoint()
        else:
            self._arm(self.interval - age)

    def flush(self) -> None:
        """Sign a checkpoint if a record this process appended is not covered yet."""
        newest = self._newest[0] if self._newest else 0
        if self._appended > newest and _signing_key_exists(self.settings):
            self.checkpoint()

    def close(self) -> None:
        """Stop the timer and cover what this process appended (the platform is closing)."""
        with self._lock:
            timer, self._timer = self._timer, None
            closed, self._closed = self._closed, True
        if timer is not None:
            timer.cancel()
        _OPEN.discard(self)
        if closed or os.getpid() != self._pid or not self.settings.home.is_dir():
            return
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - closing must not fail; verify will say
            _warn("audit checkpoint at close failed", exc)

    def _arm(self, delay: float) -> None:
        with self._lock:
            if self._timer is not None or self._closed:
                return
            timer = threading.Timer(max(delay, 0.0), self._on_timer)
            timer.daemon = True
            self._timer = timer
        timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed or not self.settings.home.is_dir():
                return
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to
            _warn("audit checkpoint failed", exc)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Path]:
        path = checkpoints_path(self.settings)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        with (path.parent / ".checkpoints.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield path

    def checkpoint(self, *, backfill: bool = False) -> Checkpoint:
        """Sign and store a checkpoint at the current head (or return the newest if current).

        Args:
            backfill: also copy every older log line that has no copy yet (a home from
                before copies existed); otherwise only the newest line is repaired.

        Raises:
            IntegrityError: a record since the last checkpoint does not verify (a
                checkpoint is never signed over a broken chain), or the log is missing,
                shorter than this process left it, or ends in a malformed line.
            ConfigError: the home has no signing key.
        """
        from ghaf.security.homekeys import load_signing_key

        key = load_signing_key(self.settings)
        with self._locked() as path:
            line, torn = _tail(path)
            if torn:  # a crash mid-line: never acknowledged, and it would glue to the next
                os.truncate(path, path.stat().st_size - torn)
            last = self._check_log(path, line)
            copies = self._reachable_copies()
            if copies is not None:
                try:
                    self._repair_copies(copies, path, line, backfill=backfill)
                except IntegrityError:
                    raise
                except Exception as exc:  # noqa: BLE001 - an outage: the log still gets it
                    _warn("audit checkpoint copies unavailable", exc)
                    copies = None
            with Session(self.engine) as session:
                head = session.get(AuditHeadRow, 1)
                head_seq = head.seq if head is not None else 0
                if last is not None and head_seq <= last.size:
                    self._seen(last)
                    return last
                frontier, prev = self._extend(session, last, head_seq)
                session.rollback()
            checkpoint = _sign(key, frontier, prev, self.clock(), self.settings)
            signed = checkpoint.to_line()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, signed)  # one write: a kill cannot tear it midway
                os.fsync(fd)
            finally:
                os.close(fd)
            self._written = checkpoint.size
            self._seen(checkpoint)
            if copies is not None:  # after the log: a crash between leaves the log longer
                _store_copy(copies, checkpoint.size, signed)
            return checkpoint

    def _reachable_copies(self) -> BlobStore | None:
        """The copy store, or None when it cannot be opened: the log still gets its
        checkpoint, and ``verify`` reports the missing copy."""
        try:
            return self.copy_store()
        except Exception as exc:  # noqa: BLE001 - any backend's failure to open
            _warn("audit checkpoint copies unavailable", exc)
            return None

    def _seen(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            self._newest = (checkpoint.size, checkpoint.when)

    def _check_log(self, path: Path, line: bytes | None) -> Checkpoint | None:
        last = _parse("log", line).checkpoint if line else None
        if line and last is None:
            raise IntegrityError(
                f"the last line of {path} is not a checkpoint; no checkpoint was signed",
                hint="run `ghaf audit verify` to see what was changed",
            )
        if (last.size if last else 0) < self._written:
            raise IntegrityError(
                f"the checkpoint log {path} shrank: this process signed size {self._written}, "
                f"the log now ends at size {last.size if last else 0}; no checkpoint was signed",
                hint="run `ghaf audit verify`; restore the log from the copies under "
                f"{COPY_PREFIX} in the artifact store",
            )
        return last

    def _repair_copies(
        self, copies: BlobStore, path: Path, line: bytes | None, *, backfill: bool
    ) -> None:
        if line is None:
            stored = next(iter(copies.keys(COPY_PREFIX)), None)
            if stored is not None:
                raise IntegrityError(
                    f"the checkpoint log {path} is missing or empty but the artifact store "
                    f"holds copies of its checkpoints ({stored}); no checkpoint was signed",
                    hint=f"restore the log from the copies under {COPY_PREFIX} (one line "
                    "each, in key order) and run `ghaf audit verify`",
                )
            return
        if backfill:
            lines, have = read_log(self.settings) or [], set(copies.keys(COPY_PREFIX))
        else:
            lines, have = [_parse("log", line)], set()
        for stored_line in lines:
            checkpoint = stored_line.checkpoint
            if checkpoint is None:
                continue
            wanted = copy_key(checkpoint.size, stored_line.line)
            if wanted not in have and not copies.exists(wanted):
                _store_copy(copies, checkpoint.size, stored_line.line)

    def _extend(
        self, session: Session, last: Checkpoint | None, head_seq: int
    ) -> tuple[MerkleFrontier, str]:
        """The frontier and chain hash at ``head_seq``, continued from the last checkpoint."""
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
        if frontier.size != head_seq:
            raise IntegrityError(
                f"audit log ends at record {frontier.size}, its head says {head_seq}; "
                "no checkpoint was signed",
                hint="run `ghaf audit verify`",
            )
        return frontier, prev


def _store_copy(copies: BlobStore, size: int, line: bytes) -> None:
    writer = copies.begin_write()
    try:
        writer.write(line)
        writer.commit(copy_key(size, line))
    except BaseException:
        writer.abort()
        raise


def _signing_key_exists(settings: GhafSettings) -> bool:
    from ghaf.security.homekeys import signing_key_path

    return signing_key_path(settings).exists()


def _sign(
    key: ec.EllipticCurvePrivateKey,
    frontier: MerkleFrontier,
    head: str,
    at: datetime,
    settings: GhafSettings,
) -> Checkpoint:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from ghaf.security.homekeys import fingerprint, public_key_path

    unsigned = Checkpoint(
        size=frontier.size,
        root=frontier.root().hex(),
        head=head,
        ts=at.isoformat(),
        key=fingerprint(public_key_path(settings).read_bytes()),
        frontier=frontier.to_json(),
    )
    signature = key.sign(unsigned.signed_body(), ec.ECDSA(hashes.SHA256()))
    return Checkpoint(**{**asdict(unsigned), "sig": base64.b64encode(signature).decode()})
