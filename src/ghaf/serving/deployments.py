"""Deployment records: what is served under a name (versions + weights, shadow), governed.

``create_deployment`` / ``update_deployment`` are the governed write paths
(``deployment.create`` / ``deployment.update``, audited by the spine, allowed to the
``release_manager`` role). Model references are resolved to concrete versions when the
record is written; each version is linked ``model:NAME:V -> deployment:NAME`` in lineage.

Who may deploy what: the project's release policy (:mod:`ghaf.registry.release`),
for everyone, the home's owner included. With ``protect_deployments`` (the default)
every version a deployment serves, live or shadow, must meet its requirements
(approved by a second person, signed, gates passed, not archived).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError, name_taken
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.registry.base import parse_ref
from ghaf.registry.release import check_release
from ghaf.registry.service import load_version, resolve_rows
from ghaf.security.identity import Actor
from ghaf.serving.tables import DeploymentRow
from ghaf.spine import current_operation, current_session, governed

STATUSES = ("active", "stopped")


@dataclass(frozen=True)
class Deployment:
    """A deployment record: ``models`` maps concrete refs (``fraud:3``) to traffic weights."""

    name: str
    project: str
    models: dict[str, float]
    shadow: str | None
    status: str
    revision: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    routing: dict[str, Any] | None = None

    @property
    def node(self) -> str:
        return f"deployment:{self.name}"


def _to_record(row: DeploymentRow) -> Deployment:
    models = {str(m["ref"]): float(m["weight"]) for m in json.loads(row.models)}
    return Deployment(
        row.name,
        row.project,
        models,
        row.shadow,
        row.status,
        row.revision,
        row.created_by,
        row.created_at,
        row.updated_by,
        row.updated_at,
        json.loads(row.routing) if row.routing else None,
    )


def _resolve(
    platform: Platform, session: Session, ref: str, deployment: str, project: str
) -> tuple[str, str]:
    """(concrete ``name:version``, lineage node) of ``ref``; refuses what the policy does.

    A deployment serves its own project's versions: another project's reads as missing.
    """
    model, row = resolve_rows(session, parse_ref(ref))
    version = load_version(session, model, row)
    if version.project != project:
        raise NotFoundError(
            f"model version {ref} does not exist in project {project!r}",
            hint=f"a deployment serves its own project's models (ghaf models list --project "
            f"{project})",
        )
    alias = parse_ref(ref).alias
    check_release(platform, session, version, alias=alias, deployment=deployment)
    return version.ref, version.node


def _weights(models: Mapping[str, float] | Sequence[str]) -> dict[str, float]:
    weights = dict(models) if isinstance(models, Mapping) else dict.fromkeys(models, 1.0)
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise InvalidInputError(
            "a deployment needs at least one model and positive weights",
            hint="e.g. {'fraud@champion': 90, 'fraud:4': 10}",
        )
    return {str(k): float(v) for k, v in weights.items()}


def _write_models(
    platform: Platform,
    actor: Actor,
    session: Session,
    name: str,
    project: str,
    models: Mapping[str, float] | Sequence[str],
    shadow: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    from ghaf.lineage import link

    resolved: list[dict[str, Any]] = []
    for ref, weight in _weights(models).items():
        concrete, node = _resolve(platform, session, ref, name, project)
        resolved.append({"ref": concrete, "weight": weight})
        link(node, f"deployment:{name}", "deployed_as")
    shadow_ref = None
    if shadow is not None:
        shadow_ref, node = _resolve(platform, session, shadow, name, project)
        link(node, f"deployment:{name}", "shadowed_in")
    current_operation().details.update({"models": resolved, "shadow": shadow_ref})
    return resolved, shadow_ref


def _check_name(name: str) -> str:
    from ghaf.registry.base import check_name

    return check_name(name)


@governed("deployment.create", resource="deployment:{name}")
def create_deployment(
    platform: Platform,
    actor: Actor,
    name: str,
    models: Mapping[str, float] | Sequence[str],
    *,
    shadow: str | None = None,
    project: str | None = None,
) -> Deployment:
    """Record a new deployment ``name`` serving ``models`` (refs -> weights, or a list).

    Raises:
        AlreadyExistsError: a deployment of that name exists (use :func:`update_deployment`).
        PolicyViolationError: a version is not signed (or, for a credential, not approved).
        NotFoundError: a reference names no registered version of the deployment's project.
    """
    session = current_session()
    _check_name(name)
    project = project or platform.default_project
    owner = session.execute(
        select(DeploymentRow.project).where(DeploymentRow.name == name)
    ).scalar_one_or_none()
    if owner is not None and owner != project:
        raise name_taken("deployment", name)
    if owner is not None:
        raise AlreadyExistsError(
            f"deployment {name!r} exists", hint=f"update it: ghaf serve ... --deployment {name}"
        )
    try:
        resolved, shadow_ref = _write_models(
            platform, actor, session, name, project, models, shadow
        )
    except DBIntegrityError as exc:  # another process recorded it since the check above
        raise AlreadyExistsError(
            f"deployment {name!r} exists", hint=f"update it: ghaf serve ... --deployment {name}"
        ) from exc
    now = utcnow()
    row = DeploymentRow(
        name=name,
        project=project,
        models=json.dumps(resolved),
        shadow=shadow_ref,
        status="active",
        revision=1,
        created_by=actor.name,
        created_at=now,
        updated_by=actor.name,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except DBIntegrityError as exc:  # another process recorded it since the check above
        raise AlreadyExistsError(
            f"deployment {name!r} exists", hint=f"update it: ghaf serve ... --deployment {name}"
        ) from exc
    return _to_record(row)


@governed("deployment.update", resource="deployment:{name}")
def update_deployment(
    platform: Platform,
    actor: Actor,
    name: str,
    *,
    models: Mapping[str, float] | Sequence[str] | None = None,
    shadow: str | None = None,
    status: str | None = None,
) -> Deployment:
    """Change a deployment's models/weights, shadow (``""`` removes it) or status.

    Raises:
        NotFoundError: no deployment ``name`` in ``platform``'s project, or a reference
            names no registered version of the deployment's project.
    """
    session = current_session()
    row = session.execute(
        select(DeploymentRow).where(DeploymentRow.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"deployment {name!r} does not exist", hint="ghaf serve MODEL@ALIAS")
    if row.project != platform.default_project:  # authorized in another project than its own
        raise NotFoundError(
            f"deployment {name!r} does not exist in project {platform.default_project!r}",
            hint="change a deployment in its own project (ghaf deployments list)",
        )
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"status {status!r} is unknown", hint=f"use {', '.join(STATUSES)}")
    if models is not None or shadow is not None:
        current = {m["ref"]: m["weight"] for m in json.loads(row.models)}
        resolved, shadow_ref = _write_models(
            platform,
            actor,
            session,
            name,
            row.project,
            current if models is None else models,
            (shadow or None) if shadow is not None else row.shadow,
        )
        row.models = json.dumps(resolved)
        row.shadow = shadow_ref
    if status is not None:
        row.status = status
        current_operation().details["status"] = status
    row.revision += 1
    row.updated_by = actor.name
    row.updated_at = utcnow()
    session.flush()
    return _to_record(row)


def set_routing(platform: Platform, name: str, routing: Mapping[str, Any] | None) -> Deployment:
    """Route the deployment's traffic by an experiment's assignment (None: by its weights).

    Called inside the experiment's governed operation (it authorizes and audits); every
    version ``routing`` names (``weights``, ``control``, ``shadows``) must be one the
    deployment serves, so a server that loaded the deployment can apply it live.

    Raises:
        NotFoundError: no deployment ``name`` in ``platform``'s project.
        InvalidInputError: a version the deployment does not serve.
    """
    session = current_session()
    row = session.execute(
        select(DeploymentRow).where(DeploymentRow.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.project != platform.default_project:
        raise NotFoundError(
            f"deployment {name!r} does not exist in project {platform.default_project!r}",
            hint="ghaf deployments list",
        )
    if routing is not None:
        served: set[str] = {m["ref"] for m in json.loads(row.models)}
        served |= {row.shadow} if row.shadow else set()
        named = {*routing["weights"], *routing.get("shadows", ()), routing["control"]}
        missing = sorted(named - served)
        if missing:
            raise InvalidInputError(
                f"deployment {name!r} does not serve {', '.join(missing)}",
                hint=f"serve every variant first: ghaf deployments update {name} "
                f"{' '.join(sorted(served | set(missing)))}=WEIGHT (then restart ghaf serve)",
            )
    row.routing = json.dumps(dict(routing), sort_keys=True) if routing is not None else None
    row.revision += 1
    row.updated_at = utcnow()
    current_operation().details.update({"deployment": name, "revision": row.revision})
    session.flush()
    return _to_record(row)


def set_weights(platform: Platform, name: str, weights: Mapping[str, float]) -> Deployment:
    """Move traffic between versions the deployment already serves (a new revision that
    running servers apply within seconds); versions not named keep their weight.

    Called inside a governed operation (a canary's: it authorizes and audits). No
    release check: each version met the policy when it was added to the deployment, so
    moving traffic back to the champion is never refused by it.

    Raises:
        NotFoundError: no deployment ``name`` in ``platform``'s project.
        InvalidInputError: a version the deployment does not serve, a negative weight, or
            no positive weight left.
    """
    session = current_session()
    row = session.execute(
        select(DeploymentRow).where(DeploymentRow.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.project != platform.default_project:
        raise NotFoundError(
            f"deployment {name!r} does not exist in project {platform.default_project!r}",
            hint="ghaf deployments list",
        )
    models = json.loads(row.models)
    served = {m["ref"] for m in models}
    unknown = sorted(set(weights) - served)
    if unknown:
        raise InvalidInputError(
            f"deployment {name!r} does not serve {', '.join(unknown)}",
            hint=f"it serves {', '.join(sorted(served))}",
        )
    for model in models:
        model["weight"] = float(weights.get(model["ref"], model["weight"]))
    _weights({m["ref"]: m["weight"] for m in models})  # none negative, some positive
    row.models = json.dumps(models)
    row.revision += 1
    row.updated_by = current_operation().actor.name
    row.updated_at = utcnow()
    current_operation().details.update(
        {"deployment": name, "revision": row.revision, "weights": dict(weights)}
    )
    session.flush()
    return _to_record(row)


def deployment_revision(platform: Platform, name: str) -> int | None:
    """The record's revision (one indexed lookup: what serving workers poll), or None."""
    with platform.read_session() as session:
        return session.execute(
            select(DeploymentRow.revision).where(DeploymentRow.name == name)
        ).scalar_one_or_none()


def get_deployment(platform: Platform, name: str) -> Deployment:
    """The deployment record ``name``.

    Raises:
        NotFoundError: no such deployment.
    """
    with platform.read_session() as session:
        row = session.execute(
            select(DeploymentRow).where(DeploymentRow.name == name)
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(
                f"deployment {name!r} does not exist", hint="ghaf serve MODEL@ALIAS"
            )
        return _to_record(row)


def list_deployments(platform: Platform) -> list[Deployment]:
    with platform.read_session() as session:
        rows = session.execute(select(DeploymentRow).order_by(DeploymentRow.name)).scalars()
        return [_to_record(row) for row in rows]


def record_deployment(
    platform: Platform,
    actor: Actor,
    name: str,
    models: Mapping[str, float] | Sequence[str],
    *,
    shadow: str | None = None,
) -> Deployment:
    """Create the record, or update it (models, shadow, status active) when it exists.

    A server that starts again with the versions the record already serves keeps the
    record's weights (a canary's share, a weight set live): it serves what the record
    says from its first request, rather than resetting it. Other versions: ``models``.
    """
    try:
        existing = get_deployment(platform, name)
    except NotFoundError:
        try:
            return create_deployment(platform, actor, name, models, shadow=shadow)
        except AlreadyExistsError:
            # Two servers of one deployment started together: the other one recorded it
            # between our read and our write. Update it as if it had been there.
            existing = get_deployment(platform, name)
    if not isinstance(models, Mapping):
        from ghaf.registry.service import get_model_version

        try:
            concrete = {get_model_version(platform, ref).ref for ref in models}
        except NotFoundError:
            concrete = set()  # refused in the update, and audited there
        if concrete == set(existing.models):
            models = dict(existing.models)
    return update_deployment(
        platform, actor, name, models=models, shadow=shadow or "", status="active"
    )
