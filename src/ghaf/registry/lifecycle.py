"""The lifecycle: aliases, approvals (four eyes), stage transitions with gates, card edits."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, select

from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.registry.base import NEXT_STAGES, STAGES, ModelRef, ModelVersion, check_alias, parse_ref
from ghaf.registry.service import load_version, resolve_rows
from ghaf.registry.tables import ModelAliasRow, ModelApprovalRow, ModelVersionRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

GatePolicy = Callable[[ModelVersion, str], None]
"""Called before a version moves to a stage; raises ``PolicyViolationError`` to refuse."""

GATE_POLICIES: list[GatePolicy] = []
"""Optional gates (evaluation thresholds, signed-only...), added with :func:`add_gate_policy`."""


def add_gate_policy(policy: GatePolicy) -> None:
    """Register a gate consulted by every stage transition."""
    GATE_POLICIES.append(policy)


@governed("model.alias", resource="model:{name}@{alias}")
def set_alias(
    platform: Platform, actor: Actor, name: str, alias: str, version: int
) -> ModelVersion:
    """Point ``name@alias`` at ``version`` (moving it off whichever version had it)."""
    check_alias(alias)
    if alias == "latest":
        raise InvalidInputError("'latest' is reserved", hint="pick another alias name")
    session = current_session()
    model, row = resolve_rows(session, ModelRef(name, version=version))
    session.execute(
        delete(ModelAliasRow).where(
            ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
        )
    )
    session.add(ModelAliasRow(model_id=model.id, alias=alias, version=row.version))
    session.flush()
    current_operation().details["version"] = row.version
    return load_version(session, model, row)


@governed("model.alias_delete", resource="model:{name}@{alias}")
def delete_alias(platform: Platform, actor: Actor, name: str, alias: str) -> None:
    """Remove ``name@alias``."""
    session = current_session()
    model, _ = resolve_rows(session, ModelRef(name, alias=check_alias(alias)))
    session.execute(
        delete(ModelAliasRow).where(
            ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
        )
    )


@governed("model.approve", resource="model:{ref}")
def approve_model_version(
    platform: Platform, actor: Actor, ref: str, *, comment: str = ""
) -> ModelVersion:
    """Approve a version for production; the approver must not be its author (four eyes).

    Raises:
        PolicyViolationError: the actor registered this version.
    """
    session = current_session()
    model, row = resolve_rows(session, parse_ref(ref))
    if actor.name == row.created_by:
        raise PolicyViolationError(
            f"{actor.name} registered {model.name}:{row.version} and cannot approve it",
            hint="four eyes: ask another approver",
        )
    session.add(
        ModelApprovalRow(
            version_id=row.id, approver=actor.name, comment=comment, created_at=utcnow()
        )
    )
    session.flush()
    current_operation().details["version"] = row.version
    return load_version(session, model, row)


@governed("model.promote", resource="model:{ref}")
def transition_model_version(
    platform: Platform, actor: Actor, ref: str, stage: str
) -> ModelVersion:
    """Move a version to ``stage`` along the lifecycle.

    Production needs an approval by someone other than the author, and every gate
    policy must pass; the version that was in production is archived.

    Raises:
        InvalidInputError: unknown stage or a transition the lifecycle does not allow.
        PolicyViolationError: no four-eyes approval, or a gate refused.
    """
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
    version = load_version(session, model, row)
    if stage == "production":
        others = [a for a in version.approvals if a != row.created_by]
        if not others:
            raise PolicyViolationError(
                f"{model.name}:{row.version} has no approval from someone other than "
                f"its author {row.created_by}",
                hint=f"another approver runs: ghaf models approve {model.name}:{row.version}",
            )
    for gate in GATE_POLICIES:
        gate(version, stage)
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


@governed("model.card_update", resource="model:{ref}")
def update_model_card(platform: Platform, actor: Actor, ref: str, markdown: str) -> ModelVersion:
    """Replace a version's model card with edited Markdown."""
    if not markdown.strip():
        raise InvalidInputError("the model card is empty", hint="pass the card's Markdown text")
    session = current_session()
    model, row = resolve_rows(session, parse_ref(ref))
    row.card = markdown
    row.updated_at = utcnow()
    session.flush()
    return load_version(session, model, row)
