"""Reference profiles stored once as artifacts, named and versioned, loaded by drift checks.

Each version belongs to a project: the one its save was authorized and audited in. A
name belongs to the project of its first version, so ``profile:NAME`` means one thing
to every drift check.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError, name_taken
from ghaf.metadata.base import utcnow
from ghaf.monitoring.profile import Profile
from ghaf.monitoring.tables import ReferenceProfileRow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

_MISSING_HINT = "store one with `ghaf monitor profile DATA --name NAME`"


@dataclass(frozen=True)
class StoredProfile:
    """A stored reference profile."""

    name: str
    version: int
    digest: str
    source: str
    num_rows: int
    num_columns: int
    created_by: str
    created_at: datetime
    project: str


def _record(row: ReferenceProfileRow) -> StoredProfile:
    return StoredProfile(
        row.name,
        row.version,
        row.digest,
        row.source,
        row.num_rows,
        row.num_columns,
        row.created_by,
        row.created_at,
        row.project,
    )


@governed("monitoring.profile.save", resource="profile:{name}")
def save_profile(
    platform: Platform,
    actor: Actor,
    name: str,
    profile: Profile,
    *,
    source: str = "",
    project: str | None = None,
) -> StoredProfile:
    """Store ``profile`` as an artifact and record it as the next version of ``name``.

    Args:
        project: where it is saved (authorized and audited); default: the platform's.

    Raises:
        InvalidInputError: an unusable name.
        AlreadyExistsError: ``name`` belongs to another project (a later version would
            change what ``profile:NAME`` means to that project's drift checks), or a
            concurrent save took the same version first.
    """
    if not name or len(name) > 128 or ":" in name:
        raise InvalidInputError(
            f"profile name {name!r} is not usable", hint="use 1-128 characters without ':'"
        )
    session = current_session()
    here = current_operation().project
    # Rows are never changed: the owner read here is the owner at commit, and a
    # concurrent first save elsewhere collides on (name, version).
    versions = dict(
        session.execute(
            select(ReferenceProfileRow.project, func.max(ReferenceProfileRow.version))
            .where(ReferenceProfileRow.name == name)
            .group_by(ReferenceProfileRow.project)
        ).all()
    )
    if set(versions) - {here}:
        raise name_taken("profile", name)
    info = platform.artifacts.put_bytes(profile.to_bytes())
    row = ReferenceProfileRow(
        name=name,
        project=here,
        version=versions.get(here, 0) + 1,
        digest=info.digest,
        source=source[:512],
        num_rows=profile.num_rows,
        num_columns=len(profile.columns),
        created_by=actor.name,
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except DBIntegrityError as exc:
        raise AlreadyExistsError(
            f"profile {name!r} version {row.version} was saved by another request meanwhile",
            hint="save it again: it becomes the next version",
        ) from exc
    current_operation().details.update({"digest": info.digest, "version": row.version})
    return _record(row)


def get_profile(platform: Platform, ref: str, *, project: str | None = None) -> StoredProfile:
    """The stored profile ``NAME`` (latest) or ``NAME@V`` (of ``project`` only, if given).

    Raises:
        NotFoundError: no such profile or version (in ``project``).
    """
    name, _, version = ref.partition("@")
    with platform.read_session() as session:
        query = select(ReferenceProfileRow).where(ReferenceProfileRow.name == name)
        if version:
            if not version.isdigit():
                raise InvalidInputError(
                    f"profile version {version!r} is not a number", hint="use NAME@3"
                )
            query = query.where(ReferenceProfileRow.version == int(version))
        if project is not None:
            query = query.where(ReferenceProfileRow.project == project)
        row = session.execute(
            query.order_by(ReferenceProfileRow.version.desc()).limit(1)
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no stored profile {ref!r}", hint=_MISSING_HINT)
        return _record(row)


def list_profiles(
    platform: Platform, name: str | None = None, *, projects: Collection[str] | None = None
) -> list[StoredProfile]:
    """Every stored profile version (of ``name``, of ``projects`` only, when given), by
    name then version."""
    query = select(ReferenceProfileRow).order_by(
        ReferenceProfileRow.name, ReferenceProfileRow.version
    )
    if name is not None:
        query = query.where(ReferenceProfileRow.name == name)
    if projects is not None:
        query = query.where(ReferenceProfileRow.project.in_(list(projects)))
    with platform.read_session() as session:
        return [_record(row) for row in session.execute(query).scalars()]


def profile_projects(platform: Platform) -> list[str]:
    """The projects that hold a stored profile."""
    with platform.read_session() as session:
        return list(session.execute(select(ReferenceProfileRow.project).distinct()).scalars())


def load_profile(platform: Platform, ref: str) -> Profile:
    """Load a stored profile (verified by its digest)."""
    return Profile.from_bytes(platform.artifacts.read_bytes(get_profile(platform, ref).digest))
