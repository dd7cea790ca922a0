"""Demo stage: roles per project, a scoped service token, and residency of the pii data."""

from __future__ import annotations

import contextlib

from ghaf.access.bindings import bind_role
from ghaf.access.http_auth import authenticate
from ghaf.access.tokens import create_token
from ghaf.data.residency import check_object_residency
from ghaf.demo.runner import DemoEnv
from ghaf.demo.state import Datasets
from ghaf.errors import AlreadyExistsError, PermissionDeniedError, PolicyViolationError

PROJECT = "uae-card-fraud"
PEOPLE = (("layla", "data_scientist"), ("omar", "model_approver"), ("svc-scorer", "model_server"))


def show_identity(env: DemoEnv, datasets: Datasets) -> str:
    platform, admin = env.platform, env.platform.admin()
    for who, role in PEOPLE:
        with contextlib.suppress(AlreadyExistsError):
            bind_role(platform, admin, who, role, project=PROJECT)
    token = create_token(platform, admin, "svc-scorer", project=PROJECT, description="demo")
    scorer = authenticate(platform, {"authorization": f"Bearer {token.secret}"}, source="demo")
    platform.spine.authorizer.authorize(scorer, "model.read", "model:fraud", PROJECT)
    try:
        platform.spine.authorizer.authorize(scorer, "model.promote", "model:fraud", PROJECT)
        escalation = "ALLOWED (wrong!)"
    except PermissionDeniedError:
        escalation = "refused"
    parts = [f"{len(PEOPLE)} role bindings; scorer token reads models, promote {escalation}"]
    node = datasets.customers.node
    try:
        check_object_residency(platform, node, "eu-west-1", project=PROJECT)
        parts.append(f"{node} to eu-west-1 allowed")
    except PolicyViolationError:
        parts.append(f"{node} to eu-west-1 refused (audited)")
    check_object_residency(platform, node, "ae-auh-1", project=PROJECT)
    parts.append("to ae-auh-1 allowed")
    return "; ".join(parts)
