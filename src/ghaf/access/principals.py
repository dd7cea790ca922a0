"""Who is known to the home: principals (users, groups, service accounts) and group members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ghaf.platform import Platform
from ghaf.security.identity_tables import GroupMemberRow, PrincipalRow


@dataclass(frozen=True)
class Principal:
    """A registered user, group or service account (a group lists its members)."""

    name: str
    kind: str
    description: str
    created_by: str
    created_at: datetime
    members: tuple[str, ...] = ()


def list_principals(platform: Platform, *, kind: str | None = None) -> list[Principal]:
    """Registered principals by name, optionally of one kind; groups with their members."""
    query = select(PrincipalRow).order_by(PrincipalRow.name)
    if kind is not None:
        query = query.where(PrincipalRow.kind == kind)
    with platform.read_session() as session:
        rows = list(session.execute(query).scalars())
        members: dict[str, list[str]] = {}
        for group, member in session.execute(
            select(GroupMemberRow.group_name, GroupMemberRow.member).order_by(
                GroupMemberRow.group_name, GroupMemberRow.member
            )
        ):
            members.setdefault(group, []).append(member)
    return [
        Principal(
            row.name,
            row.kind,
            row.description,
            row.created_by,
            row.created_at,
            tuple(members.get(row.name, ())) if row.kind == "group" else (),
        )
        for row in rows
    ]
