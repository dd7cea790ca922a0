"""Retention: what is past the time its classification may be kept goes, on a schedule.

The rules are settings (``retention``): prediction log files ``prediction_log_days``
after their newest prediction; dataset versions ``datasets[CLASSIFICATION]`` days after
they were written, by the strongest tag of their columns (the latest version of a
dataset stays while ``keep_latest``). Expired dataset versions are crypto-shredded
(:mod:`ghaf.privacy.shred`), expired log files deleted. A version of parts (a stream's
appended versions) loses the parts no kept version reads; a part a kept version reads
stays, being that version's rows too, and a version whose every part is kept this way
is not listed (nothing of it can go). Every run, dry runs included, is
a governed ``retention.run`` with a record of the rules and what went
(:func:`list_retention_runs`, for the compliance report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from ghaf.data.base import DatasetVersion
from ghaf.data.store import dataset_parts, list_datasets, list_versions
from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.privacy import predlogs
from ghaf.privacy.shred import erased_digests, forget_cached, record_erased, shred_artifact
from ghaf.privacy.tables import RetentionRunRow
from ghaf.security.identity import Actor
from ghaf.security.rbac import ALL_PROJECTS
from ghaf.serving.predlog import prediction_log_keys
from ghaf.spine import current_operation, current_session, governed

_STRENGTH = ("pii", "sensitive", "public")


def classification(tags: dict[str, str]) -> str:
    """The strongest classification of a dataset's column tags (or ``unclassified``)."""
    values = set(tags.values())
    return next((tag for tag in _STRENGTH if tag in values), "unclassified")


@dataclass(frozen=True)
class Expired:
    """One thing past its retention."""

    kind: str
    """``dataset_version`` or ``prediction_log``."""
    name: str
    """The lineage node of a version, or the log file relative to the home."""
    age_days: float
    limit_days: int
    digest: str | None = None


@dataclass
class RetentionPlan:
    """What a retention run at ``as_of`` removes under ``rules``."""

    as_of: datetime
    rules: dict[str, Any]
    expired: list[Expired] = field(default_factory=list)
    parts: dict[str, list[str]] = field(default_factory=dict, repr=False)
    """Node of an expired dataset version -> the digests of its parts that go."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "rules": self.rules,
            "expired": [e.__dict__ for e in self.expired],
        }


def retention_rules(platform: Platform) -> dict[str, Any]:
    """The rules in force, as settings give them."""
    rules = platform.settings.retention
    return {
        "prediction_log_days": rules.prediction_log_days,
        "datasets": dict(sorted(rules.datasets.items())),
        "keep_latest": rules.keep_latest,
        "prediction_log_dirs": [predlogs.label(platform, d) for d in predlogs.log_dirs(platform)],
    }


def _as_of(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise InvalidInputError("now must carry a time zone", hint="e.g. 2026-01-01T00:00:00Z")
    return now.astimezone(UTC)


def plan_retention(platform: Platform, *, now: datetime | None = None) -> RetentionPlan:
    """What a retention run at ``now`` (default: the current time) would remove."""
    as_of = _as_of(now)
    settings = platform.settings.retention
    plan = RetentionPlan(as_of, retention_rules(platform))
    days = settings.prediction_log_days
    if days is not None:
        cutoff_ms = (as_of - timedelta(days=days)).timestamp() * 1000.0
        keys = prediction_log_keys(platform)
        for path in predlogs.log_files_of(platform):
            newest = predlogs.newest_ms(path, keys=keys)
            if newest is not None and newest < cutoff_ms:
                age = (as_of.timestamp() * 1000.0 - newest) / 86_400_000.0
                plan.expired.append(
                    Expired("prediction_log", predlogs.label(platform, path), round(age, 3), days)
                )
    if settings.datasets:
        erased = erased_digests(platform)
        for name in list_datasets(platform):
            _plan_dataset(platform, plan, list_versions(platform, name), erased)
    return plan


def _plan_dataset(
    platform: Platform,
    plan: RetentionPlan,
    versions: list[DatasetVersion],
    erased: dict[str, str],
) -> None:
    """Add the expired versions of one dataset (oldest first) to ``plan``."""
    settings = platform.settings.retention
    parts = dataset_parts(platform, versions[0].name)
    expired: list[tuple[DatasetVersion, float, int]] = []
    kept: set[str] = set()
    for version in versions:
        own = parts[version.version]
        if version.digest in erased or any(p.digest in erased for p in own):
            continue
        limit = settings.datasets.get(classification(version.column_tags))
        age = (plan.as_of - version.created_at).total_seconds() / 86_400.0
        latest = settings.keep_latest and version is versions[-1]
        if limit is None or latest or age <= limit:
            kept.update(p.digest for p in own)
        else:
            expired.append((version, age, limit))
    for version, age, limit in expired:
        going = [p.digest for p in parts[version.version] if p.digest not in kept]
        if going:
            plan.expired.append(
                Expired("dataset_version", version.node, round(age, 3), limit, version.digest)
            )
            plan.parts[version.node] = going


@governed("retention.run", resource="retention:home", project=ALL_PROJECTS)
def run_retention(
    platform: Platform, actor: Actor, *, now: datetime | None = None, dry_run: bool = False
) -> RetentionPlan:
    """Remove what is past its retention at ``now`` (default: the current time); with
    ``dry_run`` only record what would go. The run is recorded either way.

    A server's scheduler calls this once a day or so; a second run removes nothing new.
    """
    plan = plan_retention(platform, now=now)
    session = current_session()
    session.add(
        RetentionRunRow(
            ran_at=utcnow(),
            as_of=plan.as_of,
            actor=actor.name,
            dry_run=dry_run,
            rules=orjson.dumps(plan.rules).decode(),
            removed=orjson.dumps([e.__dict__ for e in plan.expired]).decode(),
        )
    )
    session.flush()
    counts = {"dataset_version": 0, "prediction_log": 0}
    for item in plan.expired:
        counts[item.kind] += 1
    current_operation().details.update(
        dry_run=dry_run,
        as_of=plan.as_of.isoformat(),
        dataset_versions=counts["dataset_version"],
        prediction_logs=counts["prediction_log"],
    )
    if dry_run:
        return plan
    home = platform.settings.home
    shredded: set[str] = set()
    for item in plan.expired:
        if item.kind == "prediction_log":
            (home / item.name).unlink(missing_ok=True)  # an absolute name stays itself
        elif item.digest is not None:
            for digest in plan.parts.get(item.name, [item.digest]):
                if digest not in shredded:
                    shred_artifact(platform, digest)
                    shredded.add(digest)
                record_erased(digest, item.name, "retention")
            forget_cached(platform, item.digest)  # a version of parts' joined copy
    return plan


def list_retention_runs(platform: Platform, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest retention runs: when, as of when, who, dry or not, rules and removals."""
    with platform.read_session() as session:
        rows = session.execute(
            select(RetentionRunRow).order_by(RetentionRunRow.id.desc()).limit(limit)
        ).scalars()
        return [
            {
                "id": r.id,
                "ran_at": r.ran_at.isoformat(),
                "as_of": r.as_of.isoformat(),
                "actor": r.actor,
                "dry_run": r.dry_run,
                "rules": orjson.loads(r.rules),
                "removed": orjson.loads(r.removed),
            }
            for r in rows
        ]
