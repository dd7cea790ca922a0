"""The code policy: whether a project's models may run custom code, and what it may import.

Custom model code (a ``pyfunc`` model, a PyTorch architecture written as code) is off
until a model approver allows it for a project, module by module, with
``ghaf policy code allow --project P MODULE...``. The policy is data: versioned per
project, changed only through the governed action ``code_policy.set`` (model_approver;
audited with the modules before and after and the reason), and read at every
registration and every load of a model of that project, so a module revoked today
stops the code that imports it from loading tomorrow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow
from ghaf.models.custom_code import CodePolicy, check_module_name
from ghaf.platform import Platform
from ghaf.registry.code_tables import CodePolicyRow
from ghaf.registry.tables import RegisteredModelRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed


def code_policy_in(session: Session, project: str) -> CodePolicy:
    """The code policy in force for ``project`` (none stored: custom code is off)."""
    row = session.execute(
        select(CodePolicyRow)
        .where(CodePolicyRow.project == project)
        .order_by(CodePolicyRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        return CodePolicy(project)
    return CodePolicy(project, tuple(json.loads(row.modules)), row.version, row.created_by)


def get_code_policy(platform: Platform, project: str | None = None) -> CodePolicy:
    """The code policy in force for ``project`` (default: the platform's project)."""
    with platform.read_session() as session:
        return code_policy_in(session, project or platform.default_project)


@governed("code_policy.set", resource="code_policy:{project}", project="{project}")
def change_code_policy(
    platform: Platform,
    actor: Actor,
    project: str,
    *,
    allow: Sequence[str] = (),
    revoke: Sequence[str] = (),
    revoke_all: bool = False,
    reason: str = "",
) -> CodePolicy:
    """Store a new version of ``project``'s code policy: the modules in force, plus
    ``allow``, minus ``revoke`` (or none, with ``revoke_all``: custom code off).

    Raises:
        InvalidInputError: a module name that is not one, or one that reaches the
            process, files, network or other code (never allowed); nothing is stored.
    """
    if not (allow or revoke or revoke_all):
        raise InvalidInputError(
            "name the modules to allow or revoke", hint="ghaf policy code allow numpy --reason ..."
        )
    added = [check_module_name(m) for m in allow]
    session = current_session()
    before = code_policy_in(session, project)
    kept = set() if revoke_all else set(before.modules) - set(revoke)
    modules = tuple(sorted(kept | set(added)))
    latest = session.execute(
        select(func.max(CodePolicyRow.version)).where(CodePolicyRow.project == project)
    ).scalar_one()
    version = (latest or 0) + 1
    session.add(
        CodePolicyRow(
            project=project,
            version=version,
            modules=json.dumps(list(modules)),
            reason=reason,
            created_by=actor.name,
            created_at=utcnow(),
        )
    )
    session.flush()
    current_operation().details.update(
        {"version": version, "before": list(before.modules), "modules": list(modules)}
        | ({"reason": reason} if reason else {})
    )
    return CodePolicy(project, modules, version, actor.name)


def model_code_policy(platform: Platform, name: str, project: str | None = None) -> CodePolicy:
    """The code policy a new version of model ``name`` falls under: its project's (the
    model's, once registered; else ``project`` or the platform's)."""
    with platform.read_session() as session:
        stored = session.execute(
            select(RegisteredModelRow.project).where(RegisteredModelRow.name == name)
        ).scalar_one_or_none()
        return code_policy_in(session, stored or project or platform.default_project)
