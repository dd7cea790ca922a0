"""Which reference profiles are stored, and the project each version was saved in.

A stored profile row carries no project: the project of a version is the one its
governed ``monitoring.profile.save`` was authorized and audited in, and the spine writes
that audit record in the same transaction as the row, so every saved version has exactly
one. A version with no such record (none today: nothing saves a profile inside another
governed operation) belongs to no project, and :func:`profile_project` refuses it.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from sqlalchemy import select

from ghaf.errors import AlreadyExistsError, NotFoundError
from ghaf.monitoring.store import StoredProfile, _record, get_profile
from ghaf.monitoring.tables import ReferenceProfileRow
from ghaf.platform import Platform

SAVE_ACTION = "monitoring.profile.save"


def list_profiles(platform: Platform, name: str | None = None) -> list[StoredProfile]:
    """Every stored profile version (of ``name`` only, when given), by name then version."""
    with platform.read_session() as session:
        query = select(ReferenceProfileRow).order_by(
            ReferenceProfileRow.name, ReferenceProfileRow.version
        )
        if name is not None:
            query = query.where(ReferenceProfileRow.name == name)
        return [_record(row) for row in session.execute(query).scalars()]


def _saves(platform: Platform, name: str | None) -> Iterator[tuple[str, int, str]]:
    """(name, version, project) of each allowed save, from the audit trail."""
    resource = None if name is None else f"profile:{name}"
    with platform.read_session() as session:
        for row in platform.audit.records(
            session, resource=resource, actions={SAVE_ACTION}, outcome="allowed"
        ):
            version = orjson.loads(row.details).get("version")
            if isinstance(version, int) and row.resource.startswith("profile:"):
                yield row.resource.removeprefix("profile:"), version, row.project


def profile_projects(platform: Platform, name: str | None = None) -> dict[tuple[str, int], str]:
    """The project of each stored profile version (of ``name`` only, when given)."""
    return {(n, v): project for n, v, project in _saves(platform, name)}


def profile_project(platform: Platform, ref: str) -> tuple[StoredProfile, str]:
    """The stored profile ``NAME`` (latest) or ``NAME@V``, and its project.

    Raises:
        NotFoundError: no such profile, or a version saved in no project.
    """
    stored = get_profile(platform, ref)
    project = profile_projects(platform, stored.name).get((stored.name, stored.version))
    if project is None:
        raise NotFoundError(
            f"no stored profile {ref!r}",
            hint="store one with `ghaf monitor profile DATA --name NAME`",
        )
    return stored, project


def check_profile_name(platform: Platform, name: str, project: str) -> None:
    """Refuse saving ``name`` in ``project`` when its versions belong to another project
    (a later version would change what ``profile:NAME`` means to that project's drift
    checks).

    Raises:
        AlreadyExistsError: the name is another project's.
    """
    owners = set(profile_projects(platform, name).values())
    if owners - {project}:
        raise AlreadyExistsError(
            f"profile {name!r} belongs to another project",
            hint="pick another profile name for this project",
        )
