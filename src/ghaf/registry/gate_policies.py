"""Gate policies stored as data: versioned YAML, attached to models or projects.

A policy name belongs to the project its first version was added in; later versions are
added under that project's roles. An attachment pins one version, so a new version changes
no model's gate until someone allowed to in the model's (or project's) domain attaches it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError
from sqlalchemy.orm import Session

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError, name_taken
from ghaf.evaluation.policy import GatePolicy, parse_policy
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.projects import get_project
from ghaf.registry.base import ModelRef
from ghaf.registry.service import resolve_rows
from ghaf.registry.tables import GateAttachmentRow, GatePolicyRow, RegisteredModelRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

TargetKind = Literal["model", "project"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class GateAttachment:
    """A pinned policy version that a model, or every model of a project, must pass."""

    policy: str
    policy_version: int
    kind: TargetKind
    target: str
    project: str
    created_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "policy_version": self.policy_version,
            "kind": self.kind,
            "target": self.target,
            "project": self.project,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class StoredGatePolicy:
    """One stored version of a policy, with the newest version number and the attachments."""

    name: str
    version: int
    latest: int
    project: str
    text: str
    created_by: str
    created_at: datetime
    attachments: tuple[GateAttachment, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def policy(self) -> GatePolicy:
        """The parsed rules, named after the stored name (not the YAML's ``name:``)."""
        return parse_policy(self.text, f"gate policy {self.ref}").model_copy(
            update={"name": self.name}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "latest": self.latest,
            "project": self.project,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "text": self.text,
            "attachments": [a.to_dict() for a in self.attachments],
        }


def check_policy_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"gate policy name {name!r} is invalid",
            hint="use letters, digits, '.', '_' or '-' (up to 128), e.g. --name production",
        )
    return name


def parse_policy_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` (the newest version) or ``NAME:VERSION``."""
    name, colon, number = ref.partition(":")
    if colon and (not number.isdigit() or int(number) < 1):
        raise InvalidInputError(
            f"gate policy reference {ref!r} has an invalid version {number!r}",
            hint="use NAME or NAME:VERSION, e.g. production:2",
        )
    return check_policy_name(name), int(number) if colon else None


def add_gate_policy(
    platform: Platform,
    actor: Actor,
    text: str,
    *,
    name: str | None = None,
    source: str = "<policy>",
    model: str | None = None,
    project: str | None = None,
) -> StoredGatePolicy:
    """Store ``text`` as the next version of a policy (version 1 when the name is new).

    The YAML is checked first, so a bad file stores nothing. With ``model`` or ``project``
    the new version is also attached there, in the same transaction. Adding the same text
    as the newest version adds no version.

    Raises:
        ConfigError: the YAML is invalid (naming ``source`` and the line).
        NotFoundError: the model or project to attach to does not exist.
    """
    parsed = parse_policy(text, source)
    policy_name = check_policy_name(name or parsed.name)
    target = _target(platform, model, project)
    with platform.read_session() as session:
        owner = session.execute(
            select(GatePolicyRow.project).where(GatePolicyRow.name == policy_name).limit(1)
        ).scalar_one_or_none()
    home = owner or (target[2] if target is not None else platform.default_project)
    return _add_version(platform, actor, policy_name, text, project=home, target=target)


@governed("gate_policy.add", resource="gate_policy:{name}")
def _add_version(
    platform: Platform,
    actor: Actor,
    name: str,
    text: str,
    *,
    project: str,
    target: tuple[TargetKind, str, str] | None,
) -> StoredGatePolicy:
    session = current_session()
    latest = _latest_row(session, name)
    if latest is not None and latest.project != project:
        raise name_taken("gate policy", name)
    row = latest
    if latest is None or latest.text != text:
        row = GatePolicyRow(
            name=name,
            version=(latest.version if latest is not None else 0) + 1,
            project=project,
            text=text,
            created_by=actor.name,
            created_at=utcnow(),
        )
        session.add(row)
        try:
            session.flush()
        except DatabaseIntegrityError as exc:
            raise AlreadyExistsError(
                f"gate policy {name}:{row.version} was added at the same time by someone else",
                hint="run the command again",
            ) from exc
    assert row is not None  # nosec B101 - type narrowing
    current_operation().details["version"] = row.version
    if target is not None:
        kind, target_name, target_project = target
        _attach(
            platform, actor, name, row.version, kind=kind, target=target_name,
            project=target_project,
        )  # fmt: skip
    return _to_stored(session, row)


def attach_gate_policy(
    platform: Platform,
    actor: Actor,
    ref: str,
    *,
    model: str | None = None,
    project: str | None = None,
) -> GateAttachment:
    """Make a model (or every model of a project) pass policy ``ref`` to be promoted.

    ``ref`` is ``NAME`` (its newest version, pinned now) or ``NAME:VERSION``. Attaching
    the same policy again to the same target moves the pin.

    Raises:
        NotFoundError: no such policy, version, model or project.
        InvalidInputError: neither or both of ``model`` and ``project``.
    """
    name, number = parse_policy_ref(ref)
    target = _target(platform, model, project)
    if target is None:
        raise InvalidInputError(
            "attach needs a model or a project", hint="pass --model NAME or --project NAME"
        )
    with platform.read_session() as session:
        number = _policy_row(session, name, number).version
    kind, target_name, target_project = target
    return _attach(
        platform, actor, name, number, kind=kind, target=target_name, project=target_project
    )


@governed("gate_policy.attach", resource="gate_policy:{name}@{kind}:{target}")
def _attach(
    platform: Platform,
    actor: Actor,
    name: str,
    version: int,
    *,
    kind: TargetKind,
    target: str,
    project: str,
) -> GateAttachment:
    session = current_session()
    _policy_row(session, name, version)
    existing = session.execute(
        select(GateAttachmentRow).where(
            GateAttachmentRow.policy == name,
            GateAttachmentRow.kind == kind,
            GateAttachmentRow.target == target,
        )
    ).scalar_one_or_none()
    row = existing or GateAttachmentRow(policy=name, kind=kind, target=target)
    row.policy_version = version
    row.project = project
    row.created_by = actor.name
    row.created_at = utcnow()
    if existing is None:
        session.add(row)
    session.flush()
    current_operation().details.update({"policy_version": version})
    return _to_attachment(row)


def _target(
    platform: Platform, model: str | None, project: str | None
) -> tuple[TargetKind, str, str] | None:
    """(kind, target, project the target lives in), checked to exist; None for no target."""
    if model is not None and project is not None:
        raise InvalidInputError(
            "give a model or a project, not both", hint="pass either --model or --project"
        )
    if model is not None:
        with platform.read_session() as session:
            registered, _ = resolve_rows(session, ModelRef(model))
        return "model", registered.name, registered.project
    if project is not None:
        return "project", _known_project(platform, project), project
    return None


def _known_project(platform: Platform, name: str) -> str:
    """``name`` when it is the default project, holds a registered model, or was created.

    Models live in a project by name (the default one is never created), so any of
    these makes the name real; a typo is refused instead of gating nothing.
    """
    if name == platform.default_project:
        return name
    with platform.read_session() as session:
        holds_models = session.execute(
            select(RegisteredModelRow.id).where(RegisteredModelRow.project == name).limit(1)
        ).first()
    if holds_models is not None:
        return name
    return get_project(platform, name).name


def _latest_row(session: Session, name: str) -> GatePolicyRow | None:
    return session.execute(
        select(GatePolicyRow)
        .where(GatePolicyRow.name == name)
        .order_by(GatePolicyRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def _policy_row(session: Session, name: str, version: int | None) -> GatePolicyRow:
    if version is None:
        row = _latest_row(session, name)
    else:
        row = session.execute(
            select(GatePolicyRow).where(
                GatePolicyRow.name == name, GatePolicyRow.version == version
            )
        ).scalar_one_or_none()
    if row is None:
        what = name if version is None else f"{name}:{version}"
        raise NotFoundError(f"gate policy {what} does not exist", hint="ghaf gate policies list")
    return row


def _to_attachment(row: GateAttachmentRow) -> GateAttachment:
    kind: TargetKind = "model" if row.kind == "model" else "project"
    return GateAttachment(
        policy=row.policy,
        policy_version=row.policy_version,
        kind=kind,
        target=row.target,
        project=row.project,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _to_stored(session: Session, row: GatePolicyRow) -> StoredGatePolicy:
    latest = session.execute(
        select(func.max(GatePolicyRow.version)).where(GatePolicyRow.name == row.name)
    ).scalar_one()
    attachments = session.execute(
        select(GateAttachmentRow)
        .where(GateAttachmentRow.policy == row.name)
        .order_by(GateAttachmentRow.kind, GateAttachmentRow.target)
    ).scalars()
    return StoredGatePolicy(
        name=row.name,
        version=row.version,
        latest=int(latest),
        project=row.project,
        text=row.text,
        created_by=row.created_by,
        created_at=row.created_at,
        attachments=tuple(_to_attachment(a) for a in attachments),
    )


def get_gate_policy(platform: Platform, ref: str) -> StoredGatePolicy:
    """The stored policy ``NAME`` (newest version) or ``NAME:VERSION``.

    Raises:
        NotFoundError: no such policy or version.
    """
    name, number = parse_policy_ref(ref)
    with platform.read_session() as session:
        return _to_stored(session, _policy_row(session, name, number))


def list_gate_policies(platform: Platform) -> list[StoredGatePolicy]:
    """The newest version of every stored policy, by name."""
    with platform.read_session() as session:
        newest = (
            select(GatePolicyRow.name, func.max(GatePolicyRow.version).label("version"))
            .group_by(GatePolicyRow.name)
            .subquery()
        )
        rows = session.execute(
            select(GatePolicyRow)
            .join(
                newest,
                and_(
                    GatePolicyRow.name == newest.c.name, GatePolicyRow.version == newest.c.version
                ),
            )
            .order_by(GatePolicyRow.name)
        ).scalars()
        return [_to_stored(session, row) for row in rows]


def policy_rows(
    session: Session, *, names: Sequence[str] | None, model: str, project: str
) -> list[GatePolicyRow]:
    """The policy versions to evaluate for a model: ``names`` (``NAME`` or ``NAME:VERSION``)
    or, when None, every policy attached to the model or its project (the model's own
    attachment wins when both pin the same policy)."""
    if names is not None:
        return [_policy_row(session, *parse_policy_ref(ref)) for ref in names]
    attached = session.execute(
        select(GateAttachmentRow).where(
            or_(
                and_(GateAttachmentRow.kind == "model", GateAttachmentRow.target == model),
                and_(GateAttachmentRow.kind == "project", GateAttachmentRow.target == project),
            )
        )
    ).scalars()
    pinned: dict[str, int] = {}
    for row in sorted(attached, key=lambda a: a.kind != "project"):
        pinned[row.policy] = row.policy_version  # model rows come last and win
    return [_policy_row(session, name, number) for name, number in sorted(pinned.items())]
