"""Reads of stored monitor results: the latest per deployment and model version, and a
deployment's history (only the tables: no drift engine is imported to read them)."""

from __future__ import annotations

from sqlalchemy import func, select

from ghaf.monitoring.records import MonitorResult, result_record
from ghaf.monitoring.tables import MonitorResultRow
from ghaf.platform import Platform


def version_key(version: str) -> tuple[int, str]:
    """Sort key of a version: numbers in order, anything else after them."""
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def monitor_status(platform: Platform, deployment: str | None = None) -> list[MonitorResult]:
    """The latest result of each deployment and model version of ``platform``'s project
    (of ``deployment`` only, when given), by deployment then version."""
    here = platform.default_project
    latest = select(func.max(MonitorResultRow.id)).where(MonitorResultRow.project == here)
    if deployment is not None:
        latest = latest.where(MonitorResultRow.deployment == deployment)
    latest = latest.group_by(MonitorResultRow.deployment, MonitorResultRow.model_version)
    with platform.read_session() as session:
        rows = session.execute(
            select(MonitorResultRow).where(MonitorResultRow.id.in_(latest.scalar_subquery()))
        ).scalars()
        found = [result_record(r) for r in rows]
    return sorted(
        found, key=lambda r: (r.deployment, version_key(r.model_version.rpartition(":")[2]))
    )


def list_results(
    platform: Platform,
    deployment: str,
    *,
    model_version: str | None = None,
    limit: int = 50,
) -> list[MonitorResult]:
    """The results of ``deployment``'s monitor in ``platform``'s project, newest first."""
    query = (
        select(MonitorResultRow)
        .where(MonitorResultRow.project == platform.default_project)
        .where(MonitorResultRow.deployment == deployment)
        .order_by(MonitorResultRow.id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    if model_version is not None:
        query = query.where(MonitorResultRow.model_version == model_version)
    with platform.read_session() as session:
        return [result_record(r) for r in session.execute(query).scalars()]
