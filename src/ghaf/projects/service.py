"""Projects: create and list the units of ownership (and, later, of RBAC)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.projects.tables import ProjectRow
from ghaf.security.identity import Actor
from ghaf.spine import current_session, governed

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")


@dataclass(frozen=True)
class Project:
    """A project as callers see it."""

    name: str
    description: str
    region: str
    created_by: str
    created_at: datetime


def _to_project(row: ProjectRow) -> Project:
    return Project(row.name, row.description, row.region, row.created_by, row.created_at)


@governed("project.create", resource="project:{name}", project="{name}")
def create_project(
    platform: Platform, actor: Actor, name: str, *, description: str = "", region: str | None = None
) -> Project:
    """Create a project.

    Raises:
        InvalidInputError: the name is not lowercase letters, digits, '-' or '_'.
        AlreadyExistsError: a project with this name exists.
    """
    if not _NAME.match(name):
        raise InvalidInputError(
            f"project name {name!r} is invalid",
            hint="use lowercase letters, digits, '-' or '_' (up to 128), starting with a letter",
        )
    session = current_session()
    row = ProjectRow(
        name=name,
        description=description,
        region=region or platform.settings.artifact_region,
        created_by=actor.name,
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except DBIntegrityError as exc:
        raise AlreadyExistsError(
            f"project {name!r} already exists", hint="pick another name"
        ) from exc
    return _to_project(row)


def get_project(platform: Platform, name: str) -> Project:
    """Return the project called ``name``.

    Raises:
        NotFoundError: no such project.
    """
    with platform.read_session() as session:
        row = session.execute(
            select(ProjectRow).where(ProjectRow.name == name)
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"project {name!r} does not exist", hint="ghaf projects list")
        return _to_project(row)


def list_projects(platform: Platform) -> list[Project]:
    """All projects, by name."""
    with platform.read_session() as session:
        rows = session.execute(select(ProjectRow).order_by(ProjectRow.name)).scalars()
        return [_to_project(row) for row in rows]


def project_names(platform: Platform) -> list[str]:
    """Every project's name, the home's default project included: it holds work from
    ``ghaf init`` on without a row of its own (``ghaf projects create`` makes the others)."""
    rows = {project.name for project in list_projects(platform)}
    return sorted(rows | {platform.settings.project})
