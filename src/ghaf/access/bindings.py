"""Principals (users, groups, service accounts), group membership and role bindings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.security.identity_tables import GroupMemberRow, PrincipalRow, RoleBindingRow
from ghaf.security.rbac import ALL_PROJECTS, Policy, RbacAuthorizer
from ghaf.spine import current_operation, current_session, governed

PrincipalKind = Literal["user", "group", "service"]
Effect = Literal["allow", "deny"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$")
_PROJECT = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]{0,127})$")


@dataclass(frozen=True)
class Binding:
    """``subject`` holds (or, with effect deny, is refused) ``role`` in ``project``."""

    subject: str
    role: str
    project: str
    effect: str
    created_by: str
    created_at: datetime


def check_principal_name(name: str) -> str:
    """Validate a principal name (``group:`` prefix allowed for subjects).

    Raises:
        InvalidInputError: naming the value and the allowed characters.
    """
    if not _NAME.match(name.removeprefix("group:")):
        raise InvalidInputError(
            f"principal {name!r} is invalid",
            hint="use letters, digits and _.@+- (up to 200); groups as group:NAME",
        )
    return name


def check_project(project: str) -> str:
    """Validate a binding's project (a project name or '*')."""
    if not _PROJECT.match(project):
        raise InvalidInputError(
            f"project {project!r} is invalid", hint="a project name, or '*' for every project"
        )
    return project


def _forget_bindings(platform: Platform) -> None:
    """This process sees its own binding change at once (the authorizer caches them)."""
    if isinstance(platform.spine.authorizer, RbacAuthorizer):
        platform.spine.authorizer.forget_bindings()


@governed("principal.create", resource="principal:{name}")
def create_principal(
    platform: Platform,
    actor: Actor,
    name: str,
    *,
    kind: PrincipalKind = "user",
    description: str = "",
) -> None:
    """Register a user, group or service account.

    Raises:
        AlreadyExistsError: the name is taken.
    """
    if kind not in ("user", "group", "service"):
        raise InvalidInputError(f"kind {kind!r} is invalid", hint="use user, group or service")
    session = current_session()
    session.add(
        PrincipalRow(
            name=check_principal_name(name),
            kind=kind,
            description=description,
            created_by=actor.name,
            created_at=utcnow(),
        )
    )
    try:
        session.flush()
    except DBIntegrityError as exc:
        raise AlreadyExistsError(f"principal {name!r} already exists") from exc


@governed("group.add_member", resource="group:{group}")
def add_group_member(platform: Platform, actor: Actor, group: str, member: str) -> None:
    """Add ``member`` to ``group`` (bindings of ``group:GROUP`` then apply to it)."""
    session = current_session()
    kind = session.execute(
        select(PrincipalRow.kind).where(PrincipalRow.name == group)
    ).scalar_one_or_none()
    if kind != "group":
        raise NotFoundError(
            f"group {group!r} does not exist", hint=f"ghaf roles principal {group} --kind group"
        )
    session.add(GroupMemberRow(group_name=group, member=check_principal_name(member)))
    _forget_bindings(platform)
    try:
        session.flush()
    except DBIntegrityError as exc:
        raise AlreadyExistsError(f"{member!r} is already a member of {group!r}") from exc


@governed("role.bind", resource="role:{subject}:{role}", project="{project}")
def bind_role(
    platform: Platform,
    actor: Actor,
    subject: str,
    role: str,
    *,
    project: str,
    effect: Effect = "allow",
) -> Binding:
    """Bind ``role`` to ``subject`` in ``project``; effect ``deny`` refuses it (deny wins).

    Raises:
        InvalidInputError: bad subject, project, role or effect.
        AlreadyExistsError: the same binding exists.
    """
    check_principal_name(subject)
    check_project(project)
    Policy.default().check_role(role)
    if effect not in ("allow", "deny"):
        raise InvalidInputError(f"effect {effect!r} is invalid", hint="use allow or deny")
    row = RoleBindingRow(
        subject=subject,
        role=role,
        project=project,
        effect=effect,
        created_by=actor.name,
        created_at=utcnow(),
    )
    session = current_session()
    session.add(row)
    try:
        session.flush()
    except DBIntegrityError as exc:
        raise AlreadyExistsError(
            f"{subject} already has {effect} {role} in {project}", hint="ghaf roles list"
        ) from exc
    current_operation().details.update({"role": role, "effect": effect})
    _forget_bindings(platform)
    return _to_binding(row)


@governed("role.unbind", resource="role:{subject}:{role}", project="{project}")
def unbind_role(
    platform: Platform,
    actor: Actor,
    subject: str,
    role: str,
    *,
    project: str,
    effect: Effect = "allow",
) -> None:
    """Remove a binding; it stops counting at the next request.

    Raises:
        NotFoundError: no such binding.
    """
    result = current_session().execute(
        delete(RoleBindingRow).where(
            RoleBindingRow.subject == subject,
            RoleBindingRow.role == role,
            RoleBindingRow.project == project,
            RoleBindingRow.effect == effect,
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(
            f"{subject} has no {effect} binding of {role} in {project}", hint="ghaf roles list"
        )
    _forget_bindings(platform)


def list_bindings(
    platform: Platform, *, subject: str | None = None, project: str | None = None
) -> list[Binding]:
    """Role bindings, optionally of one subject or one project (including '*' bindings)."""
    query = select(RoleBindingRow).order_by(
        RoleBindingRow.project, RoleBindingRow.subject, RoleBindingRow.role
    )
    if subject is not None:
        query = query.where(RoleBindingRow.subject == subject)
    if project is not None:
        query = query.where(RoleBindingRow.project.in_([project, ALL_PROJECTS]))
    with platform.read_session() as session:
        return [_to_binding(row) for row in session.execute(query).scalars()]


def principal_kind(platform: Platform, name: str) -> str | None:
    """The kind of a registered principal, or None when it is not registered."""
    with platform.read_session() as session:
        return session.execute(
            select(PrincipalRow.kind).where(PrincipalRow.name == name)
        ).scalar_one_or_none()


def _to_binding(row: RoleBindingRow) -> Binding:
    return Binding(row.subject, row.role, row.project, row.effect, row.created_by, row.created_at)
