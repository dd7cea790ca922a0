"""Shipping the audit trail to log sinks from a durable cursor per sink.

Each sink's cursor (``audit_sink_cursors``) holds the last record it acknowledged. A pass
reads the records after it in sequence order, delivers them in batches, and advances the
cursor only once the sink acknowledged a batch (``audit.ship``, governed). A delivery
that fails leaves the cursor where it was and waits a capped exponential backoff before
the next try, so nothing is lost while a sink is down and nothing is sent twice once it
is back. A process killed between a delivery and its cursor advance sends that batch
again: each record carries its ``seq`` and ``record_hash``, so a receiver can drop it.

The advance is itself audited, and that record is shipped too, with the next batch: a
pass starts only when a sink is behind by a record other than shipping's own
(``audit.ship``, allowed), so passes do not feed each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlparse

import orjson
from sqlalchemy import and_, func, not_, select, text
from sqlalchemy.orm import Session

from ghaf.backends import open_log_sink
from ghaf.errors import IntegrityError, PermissionDeniedError
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.audit import GENESIS_HASH, canonical_body
from ghaf.security.audit_tables import AuditHeadRow, AuditRecordRow
from ghaf.security.identity import Actor
from ghaf.settings import AuditSinkSettings
from ghaf.shipping.base import LogSink, ShippedRecord
from ghaf.shipping.tables import SinkCursorRow
from ghaf.spine import current_operation, current_session, governed

SHIP_ACTION = "audit.ship"
HOME_WIDE = "*"
"""Shipping concerns the whole trail: only a role bound on every project reaches it."""
MAX_BATCHES = 50
"""Batches one pass delivers to one sink at most (the next pass goes on)."""
_log = get_logger(__name__)

PassState = Literal["shipped", "idle", "waiting", "busy", "failed", "disabled"]


@dataclass(frozen=True)
class SinkPass:
    """What one pass did for one sink."""

    sink: str
    state: PassState
    """shipped (records went out), idle (nothing to send), waiting (backoff), busy
    (another process holds the sink), failed (a delivery failed), disabled."""
    shipped: int
    cursor: int
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class ShipResult:
    """What one pass over every configured sink did."""

    sinks: tuple[SinkPass, ...]

    @property
    def shipped(self) -> int:
        """Records delivered in this pass, over all sinks."""
        return sum(s.shipped for s in self.sinks)

    @property
    def failed(self) -> list[SinkPass]:
        """The sinks whose delivery failed in this pass."""
        return [s for s in self.sinks if s.state == "failed"]

    def to_json(self) -> dict[str, Any]:
        return {"shipped": self.shipped, "sinks": [_jsonable(asdict(s)) for s in self.sinks]}


@dataclass(frozen=True)
class SinkStatus:
    """Where a sink stands: its cursor, how far behind the trail it is, its last error."""

    sink: str
    kind: str
    url: str
    enabled: bool
    configured: bool
    cursor: int
    head: int
    lag: int
    """Records after the cursor, shipping's own bookkeeping records not counted."""
    lag_seconds: float
    """Age of the oldest record counted in ``lag`` (0 when none)."""
    shipped: int
    last_shipped_at: datetime | None
    attempts: int
    """Failed deliveries since the last success."""
    next_attempt_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class CursorChange:
    """What a pass records for a sink: where its cursor starts, an advance, or a failure."""

    kind: Literal["start", "advance", "failure"]
    expected_seq: int | None
    """The cursor the pass read (None: no row yet); a different one is a conflict."""
    seq: int
    record_hash: str
    count: int = 0
    error: str | None = None
    next_attempt_at: datetime | None = None


def _jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in doc.items()}


def public_url(url: str) -> str:
    """``url`` without a query string (a credential put there by mistake never shows)."""
    parsed = urlparse(url)
    return parsed._replace(query="", fragment="").geturl()


@governed(SHIP_ACTION, resource="audit-sink:{sink}", project=HOME_WIDE)
def record_pass(
    platform: Platform, actor: Actor, sink: str, url: str, change: CursorChange, *, at: datetime
) -> None:
    """Record a sink's cursor start, its advance past acknowledged records, or a failed
    delivery (its error and when the backoff lets the next one go).

    Raises:
        IntegrityError: the cursor moved since the pass read it (two shippers at once).
    """
    session = current_session()
    row = session.get(SinkCursorRow, sink, with_for_update=True)
    current = None if row is None else row.seq
    if current != change.expected_seq and not (current is None and change.expected_seq == 0):
        raise IntegrityError(
            f"audit sink {sink!r}: the cursor is at {current}, not {change.expected_seq} as "
            "this pass read it",
            hint="another shipper advanced it; run one shipper per sink",
        )
    if row is None:
        row = SinkCursorRow(
            sink=sink,
            url=public_url(url),
            seq=0,
            record_hash=GENESIS_HASH,
            shipped=0,
            attempts=0,
            updated_at=at,
        )
        session.add(row)
    row.url, row.updated_at = public_url(url), at
    details: dict[str, Any] = {"sink": sink, "change": change.kind}
    if change.kind == "failure":
        row.attempts += 1
        row.last_error, row.last_error_at = change.error, at
        row.next_attempt_at = change.next_attempt_at
        details.update(error=change.error, attempts=row.attempts, cursor=row.seq)
    else:
        if change.kind == "advance":
            details.update(first=row.seq + 1, last=change.seq, count=change.count)
            row.shipped += change.count
            row.last_shipped_at = at
        else:
            details.update(cursor=change.seq)
        row.seq, row.record_hash = change.seq, change.record_hash
        row.attempts, row.next_attempt_at = 0, None
    current_operation().details.update(details)


def backoff(sink: AuditSinkSettings, attempts: int) -> timedelta:
    """The wait after ``attempts`` failed deliveries in a row: base doubling, capped."""
    seconds = min(sink.backoff_base_s * 2 ** max(attempts - 1, 0), sink.backoff_max_s)
    return timedelta(seconds=seconds)


def _is_bookkeeping() -> Any:
    return and_(AuditRecordRow.action == SHIP_ACTION, AuditRecordRow.outcome == "allowed")


def _record(row: AuditRecordRow) -> ShippedRecord:
    doc: dict[str, Any] = orjson.loads(canonical_body(row))
    doc["prev_hash"] = row.prev_hash
    doc["record_hash"] = row.record_hash
    return ShippedRecord(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        resource=row.resource,
        project=row.project,
        outcome=row.outcome,
        record_hash=row.record_hash,
        prev_hash=row.prev_hash,
        doc=doc,
        line=orjson.dumps(doc, option=orjson.OPT_SORT_KEYS),
    )


def _behind(session: Session, cursor: int) -> bool:
    """Whether a record other than shipping's own bookkeeping follows ``cursor``."""
    query = select(AuditRecordRow.seq).where(AuditRecordRow.seq > cursor, not_(_is_bookkeeping()))
    return session.execute(query.limit(1)).first() is not None


def _batch(session: Session, cursor: int, size: int) -> list[ShippedRecord]:
    query = (
        select(AuditRecordRow)
        .where(AuditRecordRow.seq > cursor)
        .order_by(AuditRecordRow.seq)
        .limit(size)
    )
    return [_record(row) for row in session.execute(query).scalars()]


def _head(session: Session) -> tuple[int, str]:
    head = session.get(AuditHeadRow, 1)
    return (0, GENESIS_HASH) if head is None else (head.seq, head.record_hash)


def _continuity(name: str, cursor: int, cursor_hash: str, batch: Sequence[ShippedRecord]) -> None:
    """The batch continues the chain the sink holds: no gap, no rewritten record."""
    expected = cursor + 1
    prev = cursor_hash
    for record in batch:
        if record.seq != expected or record.prev_hash != prev:
            raise IntegrityError(
                f"audit sink {name!r}: record {expected} does not continue the chain the "
                f"sink holds (cursor {cursor})",
                hint="run `ghaf audit verify`; nothing is shipped past a broken chain",
            )
        expected, prev = expected + 1, record.record_hash


@contextlib.contextmanager
def _sink_lock(platform: Platform, name: str) -> Iterator[bool]:
    """Hold the sink for this pass, or yield False when another shipper holds it.

    PostgreSQL: a session advisory lock (released if the process dies). SQLite: an
    ``flock`` on a file in the home (the database is on this machine).
    """
    if platform.engine.dialect.name == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(f"ghaf-audit-ship:{name}".encode()).digest()[:8], "big", signed=True
        )
        with platform.engine.connect() as conn:
            held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    directory = platform.settings.home / "audit-shipping"
    directory.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(directory / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class _Pass:
    """One sink's pass: read the cursor, deliver batches, record each outcome."""

    def __init__(
        self, platform: Platform, actor: Actor, name: str, cfg: AuditSinkSettings, sink: LogSink
    ) -> None:
        self.platform, self.actor, self.name, self.cfg, self.sink = platform, actor, name, cfg, sink

    def _change(self, change: CursorChange, now: datetime) -> None:
        record_pass(self.platform, self.actor, self.name, self.cfg.url, change, at=now)

    def run(self, now: datetime, *, force: bool) -> SinkPass:
        with self.platform.read_session() as session:
            row = session.get(SinkCursorRow, self.name)
            if row is None and self.cfg.start == "next":
                seq, digest = _head(session)
                self._change(CursorChange("start", None, seq, digest), now)
                row = None
                expected: int | None = seq
                cursor, cursor_hash, attempts = seq, digest, 0
            elif row is None:
                expected, cursor, cursor_hash, attempts = None, 0, GENESIS_HASH, 0
            else:
                expected, cursor, cursor_hash, attempts = (
                    row.seq,
                    row.seq,
                    row.record_hash,
                    row.attempts,
                )
                due = row.next_attempt_at
                if not force and due is not None and now < due:
                    return SinkPass(self.name, "waiting", 0, cursor, row.last_error, due)
        shipped = 0
        for _ in range(MAX_BATCHES):
            with self.platform.read_session() as session:
                if not _behind(session, cursor):
                    break
                batch = _batch(session, cursor, self.cfg.batch_size)
            try:
                _continuity(self.name, cursor, cursor_hash, batch)
                self.sink.send_many(batch)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
                error = f"{type(exc).__name__}: {exc}"[:1000]
                due = now + backoff(self.cfg, attempts + 1)
                failure = CursorChange(
                    "failure", expected, cursor, cursor_hash, error=error, next_attempt_at=due
                )
                self._change(failure, now)
                _log.warning("audit shipping failed", sink=self.name, error=error)
                return SinkPass(self.name, "failed", shipped, cursor, error, due)
            last = batch[-1]
            self._change(
                CursorChange("advance", expected, last.seq, last.record_hash, count=len(batch)),
                now,
            )
            expected, cursor, cursor_hash, attempts = last.seq, last.seq, last.record_hash, 0
            shipped += len(batch)
        return SinkPass(self.name, "shipped" if shipped else "idle", shipped, cursor)


def ship_once(
    platform: Platform,
    actor: Actor | None = None,
    *,
    now: datetime | None = None,
    force: bool = False,
) -> ShipResult:
    """One pass over every configured sink: deliver what each is behind by.

    A sink in backoff is skipped until its next attempt is due (``force``: try now), and
    one another process is shipping to is skipped (``busy``). Safe to call often (the
    server's background loop, ``ghaf audit ship --loop``): a sink with nothing to send
    costs one query and writes nothing.

    Args:
        actor: who ships (``audit.ship`` on every project); default: the home's owner.
        now: the pass's clock (backoff is measured on it); default: the current time.

    Raises:
        PermissionDeniedError: ``actor`` may not ship (audited; nothing was sent).
        ConfigError: a sink's certificate or secret file cannot be read (names the setting).
    """
    sinks = platform.settings.audit_shipping.sinks
    who = actor or platform.admin()
    _authorize(platform, who)
    if not sinks:
        return ShipResult(())
    at = now or utcnow()
    results: list[SinkPass] = []
    for name, cfg in sinks.items():
        if not cfg.enabled:
            results.append(SinkPass(name, "disabled", 0, _cursor(platform, name)))
            continue
        with _sink_lock(platform, name) as held:
            if not held:
                results.append(SinkPass(name, "busy", 0, _cursor(platform, name)))
                continue
            sink: LogSink = open_log_sink(name, cfg)
            try:
                results.append(_Pass(platform, who, name, cfg, sink).run(at, force=force))
            finally:
                sink.close()
    return ShipResult(tuple(results))


def _authorize(platform: Platform, actor: Actor) -> None:
    """Refuse (and audit) a shipper that may not advance cursors before anything is sent:
    records go out only where an ``audit.ship`` would record them."""
    try:
        platform.spine.authorizer.authorize(actor, SHIP_ACTION, "audit-sink:*", HOME_WIDE)
    except PermissionDeniedError as exc:
        platform.spine.record_denied(actor, SHIP_ACTION, "audit-sink:*", HOME_WIDE, exc.headline)
        raise


def _cursor(platform: Platform, name: str) -> int:
    with platform.read_session() as session:
        row = session.get(SinkCursorRow, name)
        return 0 if row is None else row.seq


def sink_status(platform: Platform, *, now: datetime | None = None) -> list[SinkStatus]:
    """Every configured sink's cursor, lag and last error, and any sink a cursor is kept
    for that the settings no longer name (``configured`` false)."""
    at = now or utcnow()
    sinks = platform.settings.audit_shipping.sinks
    out: list[SinkStatus] = []
    with platform.read_session() as session:
        head, _ = _head(session)
        rows = {r.sink: r for r in session.execute(select(SinkCursorRow)).scalars()}
        for name in sorted(set(sinks) | set(rows)):
            cfg, row = sinks.get(name), rows.get(name)
            cursor = 0 if row is None else row.seq
            if cfg is not None and row is None and cfg.start == "next":
                cursor = head  # it starts there on its first pass
            pending = select(func.count(), func.min(AuditRecordRow.ts)).where(
                AuditRecordRow.seq > cursor, not_(_is_bookkeeping())
            )
            lag, oldest = session.execute(pending).one()
            url = cfg.url if cfg is not None else (row.url if row is not None else "")
            out.append(
                SinkStatus(
                    sink=name,
                    kind=urlparse(url).scheme.removesuffix("+tls"),
                    url=public_url(url),
                    enabled=cfg.enabled if cfg is not None else False,
                    configured=cfg is not None,
                    cursor=cursor,
                    head=head,
                    lag=int(lag),
                    lag_seconds=max((at - oldest).total_seconds(), 0.0) if oldest else 0.0,
                    shipped=0 if row is None else row.shipped,
                    last_shipped_at=None if row is None else row.last_shipped_at,
                    attempts=0 if row is None else row.attempts,
                    next_attempt_at=None if row is None else row.next_attempt_at,
                    last_error=None if row is None else row.last_error,
                    last_error_at=None if row is None else row.last_error_at,
                )
            )
    return out
