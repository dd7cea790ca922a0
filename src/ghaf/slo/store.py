"""Stored SLO definitions: defined and deleted through the spine (``slo.define``,
``slo.delete``), read per project.

An SLO lives in its deployment's project: a deployment recorded in another project is
refused with the home's one answer for a name another project holds (deployment names
are unique across a home); one not recorded yet may have SLOs before its first serve.
"""

from __future__ import annotations

from sqlalchemy import select

from ghaf.errors import NotFoundError, name_taken
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.slo.base import SLO
from ghaf.slo.tables import SLODefinitionRow
from ghaf.spine import current_session, governed


def _record(row: SLODefinitionRow) -> SLO:
    return SLO(
        name=row.name,
        deployment=row.deployment,
        sli=row.sli,
        objective=row.objective,
        window_days=row.window_days,
        threshold_ms=row.threshold_ms,
        min_requests_per_hour=row.min_requests_per_hour,
    )


@governed("slo.define", resource="slo:{slo.name}")
def define_slo(platform: Platform, actor: Actor, slo: SLO) -> SLO:
    """Store ``slo`` in the platform's project, replacing one of the same name.

    Raises:
        AlreadyExistsError: the deployment is another project's (its name is taken).
    """
    from ghaf.serving.deployments import get_deployment

    session = current_session()
    project = platform.default_project
    try:
        owner: str | None = get_deployment(platform, slo.deployment).project
    except NotFoundError:
        owner = None  # not served yet: its SLOs may come first
    if owner is not None and owner != project:
        raise name_taken("deployment", slo.deployment)
    row = session.execute(
        select(SLODefinitionRow).where(
            SLODefinitionRow.project == project, SLODefinitionRow.name == slo.name
        )
    ).scalar_one_or_none()
    if row is None:
        row = SLODefinitionRow(project=project, name=slo.name)
        session.add(row)
    row.deployment = slo.deployment
    row.sli = slo.sli
    row.objective = slo.objective
    row.window_days = slo.window_days
    row.threshold_ms = slo.threshold_ms
    row.min_requests_per_hour = slo.min_requests_per_hour
    row.created_by = actor.name
    row.updated_at = utcnow()
    session.flush()
    return slo


@governed("slo.delete", resource="slo:{name}")
def delete_slo(platform: Platform, actor: Actor, name: str) -> SLO:
    """Delete the SLO ``name`` of the platform's project; returns what it was.

    Raises:
        NotFoundError: no SLO of that name.
    """
    session = current_session()
    row = session.execute(
        select(SLODefinitionRow).where(
            SLODefinitionRow.project == platform.default_project, SLODefinitionRow.name == name
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no SLO named {name!r}", hint="see ghaf slo list")
    slo = _record(row)
    session.delete(row)
    session.flush()
    return slo


def list_slos(platform: Platform) -> list[SLO]:
    """The SLOs of the platform's project, by name."""
    query = (
        select(SLODefinitionRow)
        .where(SLODefinitionRow.project == platform.default_project)
        .order_by(SLODefinitionRow.name)
    )
    with platform.read_session() as session:
        return [_record(row) for row in session.execute(query).scalars()]


def get_slo(platform: Platform, name: str) -> SLO:
    """One SLO of the platform's project.

    Raises:
        NotFoundError: no SLO of that name.
    """
    for slo in list_slos(platform):
        if slo.name == name:
            return slo
    raise NotFoundError(f"no SLO named {name!r}", hint="see ghaf slo list")
