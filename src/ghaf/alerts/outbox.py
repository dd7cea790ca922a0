"""The durable outbox: deliveries written in the same transaction as the change that owes
them, then sent at least once with bounded exponential backoff (``alert.deliver``)."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ghaf.alerts.senders import send
from ghaf.alerts.tables import OutboxRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.settings import AlertingSettings
from ghaf.spine import current_operation, current_session, governed

GROUPED = ("webhook", "email")
"""Receiver kinds whose alert notifications are grouped (group_wait, group_interval)."""


@dataclass(frozen=True)
class DeliveryReport:
    """What one pass over the outbox did."""

    sent: int
    retried: int
    failed: int
    pending: int


def delivery_key(*parts: str) -> str:
    """The idempotency key of one delivery: the same change to the same receiver, one key."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def enqueue(
    session: Session,
    settings: AlertingSettings,
    project: str,
    receiver: str,
    event: str,
    payload: Mapping[str, Any],
    *,
    key: str,
    group_key: str = "",
    now: datetime | None = None,
) -> bool:
    """Owe ``receiver`` a delivery of ``event`` for ``project``; False when ``key`` is owed
    already.

    A grouped receiver's first notification of a group waits ``group_wait_s``; the next
    waits until ``group_interval_s`` after the group's last one.
    """
    if receiver not in settings.receivers:
        return False
    if session.execute(select(OutboxRow.id).where(OutboxRow.key == key)).first():
        return False
    now = now or utcnow()
    due = now
    if settings.receivers[receiver].kind in GROUPED:
        last = session.execute(
            select(OutboxRow.sent_at)
            .where(OutboxRow.project == project, OutboxRow.receiver == receiver)
            .where(OutboxRow.group_key == group_key)
            .where(OutboxRow.sent_at.is_not(None))
            .order_by(OutboxRow.sent_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last is None:
            due = now + timedelta(seconds=settings.group_wait_s)
        else:
            due = max(now, last + timedelta(seconds=settings.group_interval_s))
    session.add(
        OutboxRow(
            key=key,
            project=project,
            receiver=receiver,
            event=event,
            group_key=group_key,
            payload=json.dumps(payload, default=str),
            status="pending",
            attempts=0,
            next_attempt_at=due,
            last_error=None,
            created_at=now,
            sent_at=None,
        )
    )
    return True


def _backoff(settings: AlertingSettings, attempts: int) -> timedelta:
    seconds = min(settings.backoff_base_s * 2 ** max(attempts - 1, 0), settings.backoff_max_s)
    return timedelta(seconds=seconds)


@governed("alert.deliver", resource="alert-outbox")
def deliver_outbox(
    platform: Platform, actor: Actor, *, limit: int = 200, now: datetime | None = None
) -> DeliveryReport:
    """Send what the platform's project owes that is due (grouped per receiver and group),
    and reschedule what failed.

    A delivery that fails is retried after ``backoff_base_s`` doubling up to
    ``backoff_max_s``, ``max_attempts`` times in all, then marked ``failed`` (kept, with
    its last error). Rows are locked while sent (SKIP LOCKED), so two senders never
    send one row at once.
    """
    session = current_session()
    settings = platform.settings.alerting
    now = now or utcnow()
    rows = (
        session.execute(
            select(OutboxRow)
            .where(OutboxRow.project == platform.default_project)
            .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    batches: dict[tuple[str, str, str], list[OutboxRow]] = defaultdict(list)
    for row in rows:
        grouped = row.group_key and settings.receivers.get(row.receiver) is not None
        one = row.group_key if grouped else row.key
        batches[(row.receiver, row.event, one)].append(row)
    sent = retried = failed = 0
    for (receiver_name, event, group), batch in batches.items():
        receiver = settings.receivers.get(receiver_name)
        error: str | None = None
        if receiver is None:
            error = f"receiver {receiver_name!r} is not configured any more"
        else:
            try:
                items = [json.loads(row.payload) for row in batch]
                send(receiver, event, items, batch[0].key, group, lambda: platform.events)
            except Exception as exc:  # noqa: BLE001 - any transport failure is retried
                error = f"{type(exc).__name__}: {exc}"[:1000]
        for row in batch:
            row.attempts += 1
            if error is None:
                row.status, row.sent_at = "sent", now
                sent += 1
            elif row.attempts >= settings.max_attempts:
                row.status, row.last_error = "failed", error
                failed += 1
            else:
                row.last_error = error
                row.next_attempt_at = now + _backoff(settings, row.attempts)
                retried += 1
    session.flush()
    pending = len(
        session.execute(
            select(OutboxRow.id).where(
                OutboxRow.project == platform.default_project, OutboxRow.status == "pending"
            )
        ).all()
    )
    current_operation().details.update({"sent": sent, "retried": retried, "failed": failed})
    return DeliveryReport(sent, retried, failed, pending)


def outbox(platform: Platform, *, status: str | None = None) -> list[dict[str, Any]]:
    """The project's outbox rows (all, or those of ``status``), oldest first."""
    with platform.read_session() as session:
        query = (
            select(OutboxRow)
            .where(OutboxRow.project == platform.default_project)
            .order_by(OutboxRow.id)
        )
        if status is not None:
            query = query.where(OutboxRow.status == status)
        return [
            {
                "key": r.key,
                "receiver": r.receiver,
                "event": r.event,
                "status": r.status,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.isoformat(),
                "last_error": r.last_error,
                "payload": json.loads(r.payload),
            }
            for r in session.execute(query).scalars()
        ]
