"""Break-glass: the one way past the release policy, for emergencies, never alone.

One person requests it with a written reason; it takes effect only when a second
authenticated person confirms it (the same four-eyes rules as an approval). Both steps
are audited under ``model.break_glass*`` (``ghaf audit show --break-glass`` lists them),
and the version's model card records the reason and both names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ghaf.errors import InvalidInputError, NotFoundError, PolicyViolationError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.registry.base import STAGES, ModelRef, ModelVersion, check_alias, check_name
from ghaf.registry.four_eyes import second_person_flags, with_release_evidence
from ghaf.registry.lifecycle import apply_stage, move_alias
from ghaf.registry.release import policy_in
from ghaf.registry.release_tables import BreakGlassRow
from ghaf.registry.service import resolve_rows
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

BREAK_GLASS_ACTIONS = ("model.break_glass_request", "model.break_glass")
"""The audit actions of the emergency path (``ghaf audit show --break-glass``)."""


@dataclass(frozen=True)
class BreakGlassRequest:
    """A request to put a version on a protected alias or stage past the policy."""

    id: int
    model: str
    version: int
    target_kind: str
    target: str
    reason: str
    requested_by: str
    requested_at: datetime
    status: str
    confirmed_by: str | None

    @property
    def describe(self) -> str:
        where = f"@{self.target}" if self.target_kind == "alias" else f" to stage {self.target}"
        return f"{self.model}:{self.version}{where}"


def _to_request(row: BreakGlassRow) -> BreakGlassRequest:
    return BreakGlassRequest(
        row.id,
        row.model,
        row.version,
        row.target_kind,
        row.target,
        row.reason,
        row.requested_by,
        row.requested_at,
        row.status,
        row.confirmed_by,
    )


@governed("model.break_glass_request", resource="model:{name}")
def request_break_glass(
    platform: Platform,
    actor: Actor,
    name: str,
    version: int,
    *,
    reason: str,
    alias: str | None = None,
    stage: str | None = None,
) -> BreakGlassRequest:
    """Ask to put ``name:version`` on ``alias`` (or move it to ``stage``) past the policy.

    Raises:
        InvalidInputError: neither or both of alias and stage, or a reason too short.
        PolicyViolationError: the project's release policy allows no break-glass.
    """
    check_name(name)
    if (alias is None) == (stage is None):
        raise InvalidInputError(
            "break-glass needs exactly one target", hint="give --alias NAME or --stage production"
        )
    if stage is not None and stage not in STAGES:
        raise InvalidInputError(f"stage {stage!r} is unknown", hint=f"use one of {STAGES}")
    session = current_session()
    model, row = resolve_rows(session, ModelRef(name, version=version))
    rule = policy_in(session, model.project).policy.break_glass
    if not rule.allowed:
        raise PolicyViolationError(
            f"the release policy of project {model.project!r} allows no break-glass",
            hint="meet the policy's requirements, or change the policy (ghaf policy release set)",
        )
    if len(reason.strip()) < rule.min_reason_chars:
        raise InvalidInputError(
            f"--reason must say why in at least {rule.min_reason_chars} characters",
            hint='e.g. --reason "INC-231: champion scores NaN since 09:10, restoring v3"',
        )
    request = BreakGlassRow(
        model=model.name,
        version=row.version,
        target_kind="alias" if alias is not None else "stage",
        target=check_alias(alias) if alias is not None else str(stage),
        reason=reason.strip(),
        requested_by=actor.name,
        requested_via=actor.credential.describe() if actor.credential else "none",
        requested_at=utcnow(),
        status="pending",
    )
    session.add(request)
    session.flush()
    current_operation().details.update(
        {"break_glass": True, "request": request.id, "reason": request.reason}
    )
    return _to_request(request)


@governed("model.break_glass", resource="break_glass:{request_id}", project="{project}")
def _confirm(platform: Platform, actor: Actor, request_id: int, project: str) -> ModelVersion:
    session = current_session()
    request = session.get(BreakGlassRow, request_id)
    if request is None or request.status != "pending":
        raise NotFoundError(
            f"no pending break-glass request {request_id}", hint="ghaf models break-glass list"
        )
    model, row = resolve_rows(session, ModelRef(request.model, version=request.version))
    policy = policy_in(session, model.project).policy
    requester_minted = request.requested_via.partition(" minted by ")[2] or None
    flags = second_person_flags(
        actor,
        subject=f"break-glass request {request_id}",
        people={"requester": request.requested_by},
        people_minted_by={"requester": requester_minted},
        self_minted=policy.self_minted_approvals,
        verb="confirm",
    )
    request.status = "done"
    request.confirmed_by = actor.name
    request.confirmed_at = utcnow()
    operation = current_operation()
    if request.target_kind == "alias":
        version = move_alias(session, model, row, request.target)
    else:
        version = apply_stage(session, model, row, request.target)
    evidence = [
        f"reason: {request.reason}",
        f"requested by {request.requested_by}, confirmed by {actor.name}",
        *flags,
    ]
    row.card = with_release_evidence(
        row.card, f"Break-glass {_to_request(request).describe} (request {request_id})", evidence
    )
    session.flush()
    operation.details.update(
        {
            "break_glass": True,
            "request": request_id,
            "reason": request.reason,
            "requested_by": request.requested_by,
            "target": f"{request.target_kind}:{request.target}",
            "flags": flags,
        }
    )
    return version


def confirm_break_glass(platform: Platform, actor: Actor, request_id: int) -> ModelVersion:
    """Carry out a pending break-glass request as the second person.

    Raises:
        NotFoundError: no pending request with that id.
        PolicyViolationError: the confirmer is the requester, or tied to them by a
            credential one minted for the other (unless the policy flags that instead).
    """
    with platform.read_session() as session:
        request = session.get(BreakGlassRow, request_id)
        ref = None if request is None else ModelRef(request.model, version=request.version)
        project = None if ref is None else resolve_rows(session, ref)[0].project
    if project is None:
        raise NotFoundError(
            f"no break-glass request {request_id}", hint="ghaf models break-glass list"
        )
    return _confirm(platform, actor, request_id, project)


def list_break_glass(platform: Platform, *, pending_only: bool = False) -> list[BreakGlassRequest]:
    """Break-glass requests, newest first."""
    query = select(BreakGlassRow).order_by(BreakGlassRow.id.desc())
    if pending_only:
        query = query.where(BreakGlassRow.status == "pending")
    with platform.read_session() as session:
        return [_to_request(row) for row in session.execute(query).scalars()]
