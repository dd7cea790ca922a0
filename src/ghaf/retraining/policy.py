"""A deployment's retraining policy: set and deleted through the spine
(``deployment.retrain_set``, ``deployment.retrain_delete``: release managers, as they deploy
and run canaries), read per project; and the loop's runs, read per deployment.

The pipeline a policy names must be one the operator declared in ``settings.pipelines``
(``MODULE:ATTRIBUTE``): a policy is data, and the loop imports only what the home's
operator allowed, never a target a caller wrote into the metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.experiments.rollout import RolloutPlan, parse_plan
from ghaf.metadata.base import utcnow
from ghaf.pipelines.pipeline import Pipeline
from ghaf.platform import Platform
from ghaf.retraining.records import (
    SUBJECTS,
    RetrainPolicy,
    RetrainRun,
    to_policy,
    to_run,
)
from ghaf.retraining.tables import RetrainPolicyRow, RetrainRunRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

MAX_PARAMS_BYTES = 64 * 1024
MAX_COOLDOWN_S = 366 * 86_400.0
_HINT = "ghaf deployments retrain-on DEPLOYMENT --pipeline MODULE:ATTRIBUTE --canary-plan FILE"


def allowed_pipeline(platform: Platform, target: str) -> Pipeline:
    """The pipeline ``target`` names, if the home's operator declared it.

    Raises:
        InvalidInputError: ``target`` is not in ``settings.pipelines`` (nothing imported),
            or is not a pipeline.
        NotFoundError: its module or attribute does not exist.
    """
    from ghaf.pipelines.loader import load_pipeline

    if target not in platform.settings.pipelines:
        raise InvalidInputError(
            f"pipeline {target!r} is not one this home runs",
            hint="the operator declares the pipelines a policy may name in the pipelines "
            f'setting (ghaf.toml: pipelines = ["{target}"])',
        )
    return load_pipeline(target)


def _deployment_here(platform: Platform, deployment: str, project: str) -> None:
    from ghaf.serving.deployments import get_deployment

    missing = NotFoundError(
        f"deployment {deployment!r} does not exist in project {project!r}",
        hint="serve a registered model first (ghaf serve MODEL@ALIAS --deployment NAME)",
    )
    try:
        record = get_deployment(platform, deployment)
    except NotFoundError:
        raise missing from None
    if record.project != project:
        raise missing


def _checked(
    platform: Platform,
    pipeline: str,
    params: Mapping[str, Any],
    plan: RolloutPlan | Mapping[str, Any],
    alerts: Sequence[str],
    cooldown_s: float,
    max_runs: int | None,
    window_s: float,
) -> tuple[dict[str, Any], RolloutPlan]:
    found = allowed_pipeline(platform, pipeline)
    values = dict(params)
    try:
        encoded = json.dumps(values, sort_keys=True)
    except (TypeError, ValueError):
        raise InvalidInputError(
            "params must be JSON values", hint="e.g. --param min_auc=0.75 --param days=45"
        ) from None
    if len(encoded) > MAX_PARAMS_BYTES:
        raise InvalidInputError("params are too large", hint=f"at most {MAX_PARAMS_BYTES} bytes")
    found.resolve_params(values)  # a parameter the pipeline lacks is refused now
    rollout = parse_plan(dict(plan) if isinstance(plan, Mapping) else plan, "the canary plan")
    unknown = sorted(set(alerts) - set(SUBJECTS))
    if unknown or not alerts:
        raise InvalidInputError(
            f"alert {unknown[0] if unknown else '(none)'!r} cannot start a retraining",
            hint=f"use {' and/or '.join(SUBJECTS)}",
        )
    if not (math.isfinite(cooldown_s) and 0.0 <= cooldown_s <= MAX_COOLDOWN_S):
        raise InvalidInputError(
            f"cooldown {cooldown_s:g} s is out of range", hint="give 0 s to 366 days, e.g. 6h"
        )
    if max_runs is not None and not 1 <= max_runs <= 1000:
        raise InvalidInputError(f"max runs {max_runs} is out of range", hint="give 1 to 1000")
    if not (math.isfinite(window_s) and 1.0 <= window_s <= MAX_COOLDOWN_S):
        raise InvalidInputError(
            f"window {window_s:g} s is out of range", hint="give 1 s to 366 days, e.g. 1d"
        )
    return values, rollout


@governed("deployment.retrain_set", resource="deployment:{deployment}")
def set_retrain_policy(
    platform: Platform,
    actor: Actor,
    deployment: str,
    *,
    pipeline: str,
    plan: RolloutPlan | Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    alerts: Sequence[str] = SUBJECTS,
    cooldown_s: float = 6 * 3600.0,
    max_runs: int | None = None,
    window_s: float = 86_400.0,
    enabled: bool = True,
) -> RetrainPolicy:
    """Create or replace the retraining policy of ``deployment`` (of the platform's project):
    a ``drift.detected`` or ``model.quality`` alert on it (``alerts``) runs ``pipeline``
    with ``params``, at most once per ``cooldown_s`` and ``max_runs`` per ``window_s``,
    and its registered candidate ramps by the canary ``plan``.

    Raises:
        NotFoundError: no deployment ``deployment`` in the project; the pipeline's module.
        InvalidInputError: a pipeline the operator did not declare, a parameter it does
            not have, a bad plan (the field named), an alert or limit out of range.
    """
    session = current_session()
    project = platform.default_project
    _deployment_here(platform, deployment, project)
    values, rollout = _checked(
        platform, pipeline, params or {}, plan, alerts, cooldown_s, max_runs, window_s
    )
    now = utcnow()
    row = session.execute(
        select(RetrainPolicyRow).where(
            RetrainPolicyRow.project == project, RetrainPolicyRow.deployment == deployment
        )
    ).scalar_one_or_none()
    if row is None:
        row = RetrainPolicyRow(
            project=project, deployment=deployment, created_by=actor.name, created_at=now
        )
        session.add(row)
    row.pipeline = pipeline
    row.params = json.dumps(values, sort_keys=True)
    row.plan = json.dumps(rollout.to_dict(), sort_keys=True)
    row.alerts = json.dumps(sorted(set(alerts)))
    row.cooldown_s = float(cooldown_s)
    row.max_runs = max_runs
    row.window_s = float(window_s)
    row.enabled = enabled
    row.updated_by = actor.name
    row.updated_at = now
    session.flush()
    current_operation().details.update(
        {
            "pipeline": pipeline,
            "params": values,
            "alerts": sorted(set(alerts)),
            "cooldown_s": cooldown_s,
            "max_runs": max_runs,
            "enabled": enabled,
        }
    )
    return to_policy(row)


@governed("deployment.retrain_delete", resource="deployment:{deployment}")
def delete_retrain_policy(platform: Platform, actor: Actor, deployment: str) -> RetrainPolicy:
    """Delete ``deployment``'s retraining policy; returns what it was (runs under way go on).

    Raises:
        NotFoundError: the deployment has none in the platform's project.
    """
    session = current_session()
    row = session.execute(
        select(RetrainPolicyRow).where(
            RetrainPolicyRow.project == platform.default_project,
            RetrainPolicyRow.deployment == deployment,
        )
    ).scalar_one_or_none()
    if row is None:
        raise _no_policy(deployment)
    policy = to_policy(row)
    session.delete(row)
    session.flush()
    return policy


def _no_policy(deployment: str) -> NotFoundError:
    return NotFoundError(f"deployment {deployment!r} has no retraining policy", hint=_HINT)


def get_retrain_policy(platform: Platform, deployment: str) -> RetrainPolicy:
    """The retraining policy of ``deployment`` in the platform's project.

    Raises:
        NotFoundError: none (another project's reads the same).
    """
    with platform.read_session() as session:
        row = session.execute(
            select(RetrainPolicyRow).where(
                RetrainPolicyRow.project == platform.default_project,
                RetrainPolicyRow.deployment == deployment,
            )
        ).scalar_one_or_none()
        if row is None:
            raise _no_policy(deployment)
        return to_policy(row)


def list_retrain_policies(platform: Platform) -> list[RetrainPolicy]:
    """The retraining policies of the platform's project, by deployment."""
    query = (
        select(RetrainPolicyRow)
        .where(RetrainPolicyRow.project == platform.default_project)
        .order_by(RetrainPolicyRow.deployment)
    )
    with platform.read_session() as session:
        return [to_policy(row) for row in session.execute(query).scalars()]


def list_retrain_runs(
    platform: Platform, deployment: str | None = None, *, limit: int = 50
) -> list[RetrainRun]:
    """The loop's runs in the platform's project (of one deployment), newest first."""
    query = select(RetrainRunRow).where(RetrainRunRow.project == platform.default_project)
    if deployment is not None:
        query = query.where(RetrainRunRow.deployment == deployment)
    query = query.order_by(RetrainRunRow.id.desc()).limit(max(1, min(limit, 1000)))
    with platform.read_session() as session:
        return [to_run(row) for row in session.execute(query).scalars()]
