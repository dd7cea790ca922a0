"""Reading the audit trail by what people ask of it: actor, action, outcome, time, project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow

MAX_LIMIT = 500
HOME_WIDE = "*"


@dataclass(frozen=True)
class AuditQuery:
    """Filters of one search; empty strings and None match everything.

    ``actor`` and ``action`` match exactly, or as a prefix when they end with ``*``.
    """

    actor: str = ""
    action: str = ""
    outcome: str = ""
    resource: str = ""
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    """Only records with a lower sequence number (the next page, newest first)."""
    limit: int = 100


def _match(column: Any, value: str) -> Any:
    if value.endswith("*"):
        return column.startswith(value[:-1], autoescape=True)
    return column == value


def search_records(
    platform: Platform, projects: Sequence[str], query: AuditQuery
) -> list[dict[str, Any]]:
    """Records of ``projects`` (``*``: every project) matching ``query``, newest first."""
    statement = select(AuditRecordRow)
    if HOME_WIDE not in projects:
        statement = statement.where(AuditRecordRow.project.in_(sorted(set(projects))))
    for column, value in (
        (AuditRecordRow.actor, query.actor),
        (AuditRecordRow.action, query.action),
        (AuditRecordRow.resource, query.resource),
    ):
        if value:
            statement = statement.where(_match(column, value))
    if query.outcome:
        statement = statement.where(AuditRecordRow.outcome == query.outcome)
    if query.since is not None:
        statement = statement.where(AuditRecordRow.ts >= query.since)
    if query.until is not None:
        statement = statement.where(AuditRecordRow.ts < query.until)
    if query.before is not None:
        statement = statement.where(AuditRecordRow.seq < query.before)
    limit = max(1, min(query.limit, MAX_LIMIT))
    statement = statement.order_by(AuditRecordRow.seq.desc()).limit(limit)
    with platform.read_session() as session:
        rows = session.execute(statement).scalars().all()
        return [
            {
                "seq": row.seq,
                "ts": row.ts,
                "actor": row.actor,
                "action": row.action,
                "resource": row.resource,
                "project": row.project,
                "outcome": row.outcome,
                "source": row.source,
                "request_id": row.request_id,
                "details": orjson.loads(row.details) if row.details else {},
                "record_hash": row.record_hash,
            }
            for row in rows
        ]
