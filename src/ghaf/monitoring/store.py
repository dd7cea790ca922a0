"""Reference profiles stored once as artifacts, named and versioned, loaded by drift checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.metadata.base import utcnow
from ghaf.monitoring.profile import Profile
from ghaf.monitoring.tables import ReferenceProfileRow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed


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
    )


@governed("monitoring.profile.save", resource="profile:{name}")
def save_profile(
    platform: Platform, actor: Actor, name: str, profile: Profile, *, source: str = ""
) -> StoredProfile:
    """Store ``profile`` as an artifact and record it as the next version of ``name``."""
    if not name or len(name) > 128 or ":" in name:
        raise InvalidInputError(
            f"profile name {name!r} is not usable", hint="use 1-128 characters without ':'"
        )
    info = platform.artifacts.put_bytes(profile.to_bytes())
    session = current_session()
    latest = session.execute(
        select(func.max(ReferenceProfileRow.version)).where(ReferenceProfileRow.name == name)
    ).scalar_one()
    row = ReferenceProfileRow(
        name=name,
        version=(latest or 0) + 1,
        digest=info.digest,
        source=source[:512],
        num_rows=profile.num_rows,
        num_columns=len(profile.columns),
        created_by=actor.name,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    current_operation().details.update({"digest": info.digest, "version": row.version})
    return _record(row)


def get_profile(platform: Platform, ref: str) -> StoredProfile:
    """The stored profile ``NAME`` (latest) or ``NAME@V``.

    Raises:
        NotFoundError: no such profile or version.
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
        row = session.execute(
            query.order_by(ReferenceProfileRow.version.desc()).limit(1)
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(
                f"no stored profile {ref!r}",
                hint="store one with `ghaf monitor profile DATA --name NAME`",
            )
        return _record(row)


def load_profile(platform: Platform, ref: str) -> Profile:
    """Load a stored profile (verified by its digest)."""
    return Profile.from_bytes(platform.artifacts.read_bytes(get_profile(platform, ref).digest))
