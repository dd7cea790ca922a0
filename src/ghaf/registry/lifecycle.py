"""The lifecycle: aliases, approvals (four eyes), stage transitions under the release policy."""

from __future__ import annotations

import json

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.registry.base import NEXT_STAGES, STAGES, ModelRef, ModelVersion, check_alias, parse_ref
from ghaf.registry.four_eyes import second_person_flags, with_release_evidence
from ghaf.registry.release import check_release, policy_in
from ghaf.registry.service import load_version, resolve_rows
from ghaf.registry.tables import (
    ModelAliasRow,
    ModelApprovalRow,
    ModelVersionRow,
    RegisteredModelRow,
)
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed
from ghaf.tracking import get_run


def _model_project(platform: Platform, ref: str) -> str:
    """The project that holds the model ``ref`` names: its lifecycle is authorized there,
    whatever project the caller's platform acts in (the default one on a home), so a
    role in one project never moves another project's model."""
    try:
        name = parse_ref(ref).name
    except InvalidInputError:
        return platform.default_project  # refused inside the operation, audited
    with platform.read_session() as session:
        owner = session.execute(
            select(RegisteredModelRow.project).where(RegisteredModelRow.name == name)
        ).scalar_one_or_none()
    return owner or platform.default_project  # a missing model fails in the operation


def set_alias(
    platform: Platform, actor: Actor, name: str, alias: str, version: int
) -> ModelVersion:
    """Point ``name@alias`` at ``version`` (moving it off whichever version had it).

    A protected alias (the project's release policy: ``champion``, ``production`` by
    default) takes only a version that meets the policy; there is no admin bypass.

    Raises:
        PolicyViolationError: naming each requirement the version does not meet.
    """
    project = _model_project(platform, name)
    return _set_alias(platform.in_project(project), actor, name, alias, version, project=project)


@governed("model.alias", resource="model:{name}@{alias}")
def _set_alias(
    platform: Platform, actor: Actor, name: str, alias: str, version: int, *, project: str
) -> ModelVersion:
    check_alias(alias)
    if alias == "latest":
        raise InvalidInputError("'latest' is reserved", hint="pick another alias name")
    session = current_session()
    model, row = resolve_rows(session, ModelRef(name, version=version))
    check_release(platform, session, load_version(session, model, row), alias=alias)
    return move_alias(session, model, row, alias)


def move_alias(
    session: Session, model: RegisteredModelRow, row: ModelVersionRow, alias: str
) -> ModelVersion:
    """Point the alias at ``row`` inside the current operation (no policy check)."""
    session.execute(
        delete(ModelAliasRow).where(
            ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
        )
    )
    session.add(ModelAliasRow(model_id=model.id, alias=alias, version=row.version))
    session.flush()
    current_operation().details["version"] = row.version
    return load_version(session, model, row)


def delete_alias(platform: Platform, actor: Actor, name: str, alias: str) -> None:
    """Remove ``name@alias``."""
    project = _model_project(platform, name)
    _delete_alias(platform.in_project(project), actor, name, alias, project=project)


@governed("model.alias_delete", resource="model:{name}@{alias}")
def _delete_alias(platform: Platform, actor: Actor, name: str, alias: str, *, project: str) -> None:
    session = current_session()
    model, _ = resolve_rows(session, ModelRef(name, alias=check_alias(alias)))
    session.execute(
        delete(ModelAliasRow).where(
            ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
        )
    )


def approve_model_version(
    platform: Platform, actor: Actor, ref: str, *, comment: str = ""
) -> ModelVersion:
    """Approve a version for production: four eyes, whoever asks.

    The approver must hold ``model.approve`` (the spine checks it) and be a second
    person: neither the version's author nor the trainer of its run, and not tied to
    them by a credential one minted for the other (see :mod:`ghaf.registry.four_eyes`).

    Raises:
        PolicyViolationError: the approver is not a second person.
    """
    project = _model_project(platform, ref)
    return _approve(platform.in_project(project), actor, ref, comment=comment, project=project)


@governed("model.approve", resource="model:{ref}")
def _approve(
    platform: Platform, actor: Actor, ref: str, *, comment: str, project: str
) -> ModelVersion:
    session = current_session()
    model, row = resolve_rows(session, parse_ref(ref))
    policy = policy_in(session, model.project).policy
    people = {"author": row.created_by}
    if row.run_id is not None:
        people["trainer"] = get_run(platform, row.run_id).user
    flags = second_person_flags(
        actor,
        subject=f"{model.name}:{row.version}",
        people=people,
        people_minted_by={"author": row.author_minted_by},
        self_minted=policy.self_minted_approvals,
    )
    session.add(
        ModelApprovalRow(
            version_id=row.id,
            approver=actor.name,
            comment=comment,
            created_at=utcnow(),
            credential=actor.credential.describe() if actor.credential else None,
            flags=json.dumps(flags) if flags else None,
        )
    )
    if flags:
        row.card = with_release_evidence(row.card, f"Approval by {actor.name}", flags)
    session.flush()
    details = current_operation().details
    details["version"] = row.version
    if flags:
        details["flags"] = flags
    return load_version(session, model, row)


def transition_model_version(
    platform: Platform, actor: Actor, ref: str, stage: str
) -> ModelVersion:
    """Move a version to ``stage`` along the lifecycle.

    A protected stage (the release policy: ``production`` by default) needs what the
    policy requires: approvals by a second person, a signature, the gate policies
    passed (their verdicts are stored on the version), not archived. The version that
    was in production is archived.

    Raises:
        InvalidInputError: unknown stage or a transition the lifecycle does not allow.
        PolicyViolationError: naming each release requirement the version does not meet.
    """
    project = _model_project(platform, ref)
    return _transition(platform.in_project(project), actor, ref, stage, project=project)


@governed("model.promote", resource="model:{ref}")
def _transition(
    platform: Platform, actor: Actor, ref: str, stage: str, *, project: str
) -> ModelVersion:
    if stage not in STAGES:
        raise InvalidInputError(
            f"stage {stage!r} is unknown", hint=f"use one of {', '.join(STAGES)}"
        )
    session = current_session()
    model, row = resolve_rows(session, parse_ref(ref))
    if stage not in NEXT_STAGES[row.stage]:
        allowed = ", ".join(sorted(NEXT_STAGES[row.stage]))
        raise InvalidInputError(
            f"{model.name}:{row.version} cannot move from {row.stage} to {stage}",
            hint=f"from {row.stage} it may go to: {allowed}",
        )
    check_release(platform, session, load_version(session, model, row), stage=stage)
    return apply_stage(session, model, row, stage)


def apply_stage(
    session: Session, model: RegisteredModelRow, row: ModelVersionRow, stage: str
) -> ModelVersion:
    """Move ``row`` to ``stage`` inside the current operation (no policy check).

    The version that was in production is archived when another takes its place.
    """
    if stage == "production":
        previous = session.execute(
            select(ModelVersionRow).where(
                ModelVersionRow.model_id == model.id,
                ModelVersionRow.stage == "production",
                ModelVersionRow.id != row.id,
            )
        ).scalars()
        for old in previous:
            old.stage = "archived"
            old.updated_at = utcnow()
    current_operation().details.update({"from": row.stage, "to": stage, "version": row.version})
    row.stage = stage
    row.updated_at = utcnow()
    session.flush()
    return load_version(session, model, row)


def update_model_card(platform: Platform, actor: Actor, ref: str, markdown: str) -> ModelVersion:
    """Replace a version's model card with edited Markdown."""
    project = _model_project(platform, ref)
    return _update_card(platform.in_project(project), actor, ref, markdown, project=project)


@governed("model.card_update", resource="model:{ref}")
def _update_card(
    platform: Platform, actor: Actor, ref: str, markdown: str, *, project: str
) -> ModelVersion:
    if not markdown.strip():
        raise InvalidInputError("the model card is empty", hint="pass the card's Markdown text")
    session = current_session()
    model, row = resolve_rows(session, parse_ref(ref))
    row.card = markdown
    row.updated_at = utcnow()
    session.flush()
    return load_version(session, model, row)
