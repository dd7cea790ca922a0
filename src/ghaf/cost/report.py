"""The cost report: stored usage x the price sheet, grouped by project, model, deployment
or user over a time window, with idle cost apart and cost per 1,000 predictions.

A record counts in the window it ended in (a running server records a segment at least
every ``cost.record_interval_s``). Records made inside another record (a run inside a
pipeline step) are left out of the sums: the enclosing record already holds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ghaf.cost.base import StoredUsage
from ghaf.cost.prices import PriceSheet, Quantities
from ghaf.cost.store import list_usage, usage_projects
from ghaf.errors import InvalidInputError, PermissionDeniedError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor

GROUPINGS = ("project", "model", "deployment", "user")
READ_ACTION = "cost.read"
_SPAN = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m``, ``2w`` before ``now``, or an ISO 8601 time (UTC if no zone).

    Raises:
        InvalidInputError: anything else, naming --since and the forms it takes.
    """
    return _parse_time("since", text, now)


def parse_until(text: str | None, now: datetime | None = None) -> datetime:
    """An ISO 8601 time or a span before ``now`` (default: now)."""
    return (now or utcnow()) if text is None else _parse_time("until", text, now)


def _parse_time(name: str, text: str, now: datetime | None) -> datetime:
    raw = text.strip()
    match = _SPAN.match(raw)
    if match:
        span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (now or utcnow()) - span
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInputError(
            f"--{name} {text!r} is not a time span or an ISO 8601 time",
            hint=f"e.g. --{name} 7d (also 30m, 24h, 2w) or --{name} 2026-12-01T00:00:00Z",
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def check_grouping(by: str) -> str:
    """``by`` when it is a grouping the report knows.

    Raises:
        InvalidInputError: naming --by and the groupings.
    """
    if by not in GROUPINGS:
        raise InvalidInputError(
            f"--by {by!r} is not a grouping of the cost report",
            hint=f"use --by {' | '.join(GROUPINGS)}",
        )
    return by


@dataclass
class _Group:
    key: str | None
    records: int = 0
    cpu_hours: float = 0.0
    cpu_hours_billed: float = 0.0
    memory_gb_hours: float = 0.0
    memory_gb_hours_billed: float = 0.0
    gpu_hours: float = 0.0
    gpu_hours_billed: float = 0.0
    replica_hours: float = 0.0
    predictions: int = 0
    cost: float = 0.0
    usage_cost: float = 0.0
    idle_cost: float = 0.0
    deployment_cost: float = 0.0
    by_kind: dict[str, float] = field(default_factory=dict)

    def add(self, stored: StoredUsage, prices: PriceSheet) -> None:
        usage = stored.usage
        q = Quantities.of(usage)
        charge = prices.charge(usage)
        self.records += 1
        self.cpu_hours += q.cpu_used
        self.cpu_hours_billed += q.cpu_billed
        self.memory_gb_hours += q.memory_used
        self.memory_gb_hours_billed += q.memory_billed
        self.gpu_hours += q.gpu_used
        self.gpu_hours_billed += q.gpu_billed
        self.cost += charge.total
        self.usage_cost += charge.used
        self.idle_cost += charge.idle
        self.by_kind[usage.kind] = self.by_kind.get(usage.kind, 0.0) + charge.total
        if usage.kind == "deployment":
            self.replica_hours += usage.replica_hours
            self.predictions += usage.predictions
            self.deployment_cost += charge.total

    def to_dict(self) -> dict[str, Any]:
        per_1000 = self.deployment_cost / self.predictions * 1000.0 if self.predictions else None
        return {
            "key": self.key,
            "records": self.records,
            "cpu_hours": self.cpu_hours,
            "cpu_hours_billed": self.cpu_hours_billed,
            "memory_gb_hours": self.memory_gb_hours,
            "memory_gb_hours_billed": self.memory_gb_hours_billed,
            "gpu_hours": self.gpu_hours,
            "gpu_hours_billed": self.gpu_hours_billed,
            "replica_hours": self.replica_hours,
            "predictions": self.predictions,
            "cost": self.cost,
            "usage_cost": self.usage_cost,
            "idle_cost": self.idle_cost,
            "deployment_cost": self.deployment_cost,
            "cost_per_1000_predictions": per_1000,
            "by_kind": dict(sorted(self.by_kind.items())),
        }


def group_key(stored: StoredUsage, by: str) -> str | None:
    """The value of ``by`` for one record (None: the record has none, e.g. a run's model)."""
    if by == "project":
        return stored.project
    if by == "user":
        return stored.user
    return stored.usage.model if by == "model" else stored.usage.deployment


def readable_projects(platform: Platform, actor: Actor, project: str | None = None) -> list[str]:
    """The projects whose costs ``actor`` may read: ``project`` alone when given (refused
    if not allowed), else every project with usage that the actor may read.

    Raises:
        PermissionDeniedError: ``project`` given and not readable (audited).
    """
    authorizer = platform.spine.authorizer
    if project is not None:
        try:
            authorizer.authorize(actor, READ_ACTION, f"project:{project}", project)
        except PermissionDeniedError as exc:
            platform.spine.record_denied(
                actor, READ_ACTION, f"project:{project}", project, exc.headline
            )
            raise
        return [project]
    allowed = []
    for name in usage_projects(platform):
        try:
            authorizer.authorize(actor, READ_ACTION, f"project:{name}", name)
        except PermissionDeniedError:
            continue  # filtering a listing is not an attempt
        allowed.append(name)
    return allowed


def build_report(
    records: list[StoredUsage],
    prices: PriceSheet,
    by: str,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """The report's JSON document over ``records`` (the pure part: no store, no actor)."""
    check_grouping(by)
    groups: dict[str | None, _Group] = {}
    total = _Group("total")
    nested = 0
    for stored in records:
        if stored.usage.within:
            nested += 1
            continue
        key = group_key(stored, by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(key)
        group.add(stored, prices)
        total.add(stored, prices)
    ordered = sorted(groups.values(), key=lambda g: (-g.cost, g.key or ""))
    return {
        "by": by,
        "since": since,
        "until": until,
        "prices": prices.to_dict(),
        "groups": [g.to_dict() for g in ordered],
        "total": total.to_dict(),
        "nested_records": nested,
    }


def cost_report(
    platform: Platform,
    actor: Actor,
    *,
    by: str = "project",
    since: datetime,
    until: datetime | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    """The cost report over the projects ``actor`` may read (``cost.read``), or over
    ``project`` alone.

    Raises:
        InvalidInputError: an unknown grouping, or ``since`` not before ``until``.
        PermissionDeniedError: ``project`` given and not readable.
    """
    check_grouping(by)
    until = until or utcnow()
    if since >= until:
        raise InvalidInputError(
            f"--since ({since.isoformat()}) is not before --until ({until.isoformat()})",
            hint="give a window that starts before it ends, e.g. --since 7d",
        )
    projects = readable_projects(platform, actor, project)
    records = list_usage(platform, projects=projects, since=since, until=until)
    return build_report(records, PriceSheet.from_settings(platform.settings.cost), by, since, until)
