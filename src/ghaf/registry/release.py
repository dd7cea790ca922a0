"""The release policy: what a version needs before it may hold a protected alias or stage.

A project's policy is YAML stored (versioned) in the metadata and edited with
``ghaf policy release show|set``; a project without one gets :data:`DEFAULT_POLICY`.
Every path to production consults it in the service, whichever door the request came
through: moving an alias, promoting to a stage, creating a deployment and loading a
model in a server. There is no admin bypass; the one way past it is break-glass
(:mod:`ghaf.registry.break_glass`): a written reason and a second authenticated person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghaf.errors import ConfigError, PolicyViolationError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.registry.base import ModelVersion, check_alias
from ghaf.registry.gate_policies import policy_rows
from ghaf.registry.gates import evaluate_gates, gate_verdicts
from ghaf.registry.release_tables import ReleasePolicyRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

DEFAULT_POLICY = """\
version: 1
# Aliases and stages that only a version meeting `requires` may hold.
protected_aliases: [champion, production]
protected_stages: [production]
# Every version a deployment serves (live or shadow) must meet `requires` too.
protect_deployments: true
requires:
  approvals: 1          # by authenticated approvers other than the author and the trainer
  signed: true
  gates: attached       # every gate policy attached to the model or project must pass
  not_archived: true
# An approval made with a token that the author (or trainer) minted is no second person:
# refuse it, or accept it flagged on the model card and in the audit.
self_minted_approvals: refuse
break_glass:
  allowed: true
  min_reason_chars: 20
"""


class Requirements(BaseModel):
    """What a version needs before it may hold a protected alias or stage."""

    model_config = ConfigDict(extra="forbid")
    approvals: int = Field(default=1, ge=0, le=10)
    signed: bool = True
    gates: Literal["attached", "none"] | list[str] = "attached"
    not_archived: bool = True


class BreakGlassRule(BaseModel):
    """Whether the emergency path exists, and how much reason it needs."""

    model_config = ConfigDict(extra="forbid")
    allowed: bool = True
    min_reason_chars: int = Field(default=20, ge=1, le=2000)


class ReleasePolicy(BaseModel):
    """A project's release policy (the parsed YAML)."""

    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    protected_aliases: list[str] = Field(default_factory=lambda: ["champion", "production"])
    protected_stages: list[Literal["staging", "production"]] = Field(
        default_factory=lambda: list[Literal["staging", "production"]](["production"])
    )
    protect_deployments: bool = True
    requires: Requirements = Field(default_factory=Requirements)
    self_minted_approvals: Literal["refuse", "flag"] = "refuse"
    break_glass: BreakGlassRule = Field(default_factory=BreakGlassRule)

    @field_validator("protected_aliases")
    @classmethod
    def _aliases(cls, value: list[str]) -> list[str]:
        return [check_alias(alias) for alias in value]

    def protects(self, *, alias: str | None = None, stage: str | None = None) -> bool:
        """Whether holding ``alias`` (or moving to ``stage``) needs the requirements."""
        return (alias is not None and alias in self.protected_aliases) or (
            stage is not None and stage in self.protected_stages
        )


@dataclass(frozen=True)
class StoredReleasePolicy:
    """The policy in force for a project, with where it came from."""

    project: str
    version: int
    """0 for the built-in default."""
    text: str
    policy: ReleasePolicy
    created_by: str | None


def parse_release_policy(text: str, source: str = "<release policy>") -> ReleasePolicy:
    """Parse and check a release policy.

    Raises:
        ConfigError: naming the field and what is accepted.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping (see `ghaf policy release show`)")
    try:
        return ReleasePolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        reason = first["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"{source}: field {where or '(top)'} = {first.get('input')!r} is invalid: {reason}",
            hint="`ghaf policy release show --default` prints a valid policy",
        ) from exc


def policy_in(session: Session, project: str) -> StoredReleasePolicy:
    """The release policy in force for ``project`` (stored, else the default)."""
    row = session.execute(
        select(ReleasePolicyRow)
        .where(ReleasePolicyRow.project == project)
        .order_by(ReleasePolicyRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        return StoredReleasePolicy(
            project, 0, DEFAULT_POLICY, parse_release_policy(DEFAULT_POLICY), None
        )
    policy = parse_release_policy(row.text, f"release policy {project} v{row.version}")
    return StoredReleasePolicy(project, row.version, row.text, policy, row.created_by)


def get_release_policy(platform: Platform, project: str | None = None) -> StoredReleasePolicy:
    """The release policy in force for ``project`` (default: the platform's project)."""
    with platform.read_session() as session:
        return policy_in(session, project or platform.default_project)


@governed("release_policy.set", resource="release_policy:{project}", project="{project}")
def set_release_policy(
    platform: Platform, actor: Actor, project: str, text: str
) -> StoredReleasePolicy:
    """Store a new version of ``project``'s release policy (checked first, then audited).

    Raises:
        ConfigError: the YAML is not a valid release policy (nothing is stored).
    """
    policy = parse_release_policy(text)
    session = current_session()
    latest = session.execute(
        select(func.max(ReleasePolicyRow.version)).where(ReleasePolicyRow.project == project)
    ).scalar_one()
    version = (latest or 0) + 1
    session.add(
        ReleasePolicyRow(
            project=project, version=version, text=text, created_by=actor.name, created_at=utcnow()
        )
    )
    session.flush()
    current_operation().details["version"] = version
    return StoredReleasePolicy(project, version, text, policy, actor.name)


def counted_approvals(version: ModelVersion, policy: ReleasePolicy) -> list[str]:
    """Approvers that count: not the author, and not flagged as self-minted unless allowed."""
    return [
        approval.approver
        for approval in version.approval_records
        if approval.approver != version.created_by
        and (not approval.flags or policy.self_minted_approvals == "flag")
    ]


def missing_requirements(
    platform: Platform,
    version: ModelVersion,
    policy: ReleasePolicy,
    *,
    evaluate_gates: bool,
) -> list[str]:
    """What ``version`` still lacks under ``policy`` (empty when it may be released).

    Args:
        evaluate_gates: run the required gate policies now and store their verdicts
            (inside a governed operation); otherwise judge by the stored verdicts.
    """
    needs = policy.requires
    missing = []
    approvers = counted_approvals(version, policy)
    if len(approvers) < needs.approvals:
        missing.append(
            f"approved ({len(approvers)} of {needs.approvals} approvals by someone other than "
            f"its author {version.created_by})"
        )
    if needs.signed and not version.signed:
        missing.append("signed")
    if needs.not_archived and version.stage == "archived":
        missing.append("not archived")
    if needs.gates != "none":
        names = None if needs.gates == "attached" else list(needs.gates)
        missing += _gate_failures(platform, version, names, evaluate=evaluate_gates)
    return missing


def _gate_failures(
    platform: Platform, version: ModelVersion, names: list[str] | None, *, evaluate: bool
) -> list[str]:
    """The required gate policies ``version`` has not passed, as requirement phrases."""
    if evaluate:
        verdicts = evaluate_gates(platform, version, names, purpose="release")
    else:
        with platform.read_session() as session:
            required = policy_rows(
                session, names=names, model=version.name, project=version.project
            )
        stored = {(v.policy, v.policy_version): v for v in gate_verdicts(platform, version.ref)}
        verdicts = []
        never = []
        for policy in required:
            verdict = stored.get((policy.name, policy.version))
            if verdict is None:
                never.append(f"passed by gate {policy.name}:{policy.version} (never evaluated)")
            else:
                verdicts.append(verdict)
        if never:
            return never
    return [
        f"passed by gate {v.policy}:{v.policy_version} (failed: "
        + "; ".join(f"{r.rule} measured {r.measured}, {r.reason}" for r in v.failures)
        + ")"
        for v in verdicts
        if not v.passed
    ]


def check_release(
    platform: Platform,
    session: Session,
    version: ModelVersion,
    *,
    alias: str | None = None,
    stage: str | None = None,
    deployment: str | None = None,
) -> StoredReleasePolicy:
    """Refuse putting ``version`` on a protected alias, stage or deployment it does not meet.

    Called inside the governed operation that would do it (gates run and are stored).

    Raises:
        PolicyViolationError: naming every missing requirement and the way forward.
    """
    stored = policy_in(session, version.project)
    policy = stored.policy
    protected = policy.protects(alias=alias, stage=stage) or (
        deployment is not None and policy.protect_deployments
    )
    if not protected:
        return stored
    missing = missing_requirements(platform, version, policy, evaluate_gates=True)
    if missing:
        raise PolicyViolationError(
            f"{version.ref} may not {_target_text(alias, stage, deployment)}: the release "
            f"policy of project {version.project!r} requires it to be {'; '.join(missing)}",
            hint=_hint(version, policy),
        )
    return stored


def check_serving(platform: Platform, version: ModelVersion, alias: str | None) -> None:
    """Refuse loading ``version`` in a server when the policy does not allow it there.

    Read-only: judged by the stored gate verdicts, never by running the gates.

    Raises:
        PolicyViolationError: naming the missing requirements.
    """
    with platform.read_session() as session:
        policy = policy_in(session, version.project).policy
    if not (policy.protects(alias=alias) or policy.protect_deployments):
        return
    missing = missing_requirements(platform, version, policy, evaluate_gates=False)
    if missing:
        where = f"serve {version.name}@{alias}" if alias else "be served"
        raise PolicyViolationError(
            f"{version.ref} may not {where}: the release policy of project "
            f"{version.project!r} requires it to be {'; '.join(missing)}",
            hint=_hint(version, policy),
        )


def _target_text(alias: str | None, stage: str | None, deployment: str | None) -> str:
    if alias is not None:
        return f"hold the protected alias {alias!r}"
    if stage is not None:
        return f"move to the protected stage {stage!r}"
    return f"be deployed in {deployment!r}"


def _hint(version: ModelVersion, policy: ReleasePolicy) -> str:
    steps = [f"another approver runs `ghaf models approve {version.ref}`"]
    if policy.break_glass.allowed:
        steps.append("in an emergency: `ghaf models break-glass request ... --reason ...`")
    return "; ".join(steps)
