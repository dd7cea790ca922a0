"""Role-based access control: the policy (data, in ``policy.yaml``) and the spine's Authorizer.

Roles are bound per project (the domain). Only an authenticated :class:`Actor` (one
with a :class:`~ghaf.security.identity.Credential`) may act. An actor produced from an
API token or an OIDC JWT carries its resolved grants in ``Actor.roles`` as strings:

- ``"PROJECT:ROLE"``: an allow grant (``"*:ROLE"`` for every project);
- ``"!PROJECT:ROLE"``: a deny grant (explicit deny wins);
- ``"@credential"``: the marker that the grants are final (no lookup of bindings).

The home's owner (embedded mode) has no bypass: ``ghaf init`` binds it to the human
roles on every project, as ordinary bindings that ``ghaf roles`` shows. Actions on the
home itself (``home.*``) belong to its owner alone; actions on its keys (``keys.*``) to
its owner and to roles bound on every project (``'*'``) that allow them.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from ghaf.errors import ConfigError, InvalidInputError, PermissionDeniedError
from ghaf.security.identity import Actor
from ghaf.security.identity_tables import GroupMemberRow, RoleBindingRow

CREDENTIAL_MARKER = "@credential"
ALL_PROJECTS = "*"
SENSITIVE_TAGS = frozenset({"pii", "sensitive"})


@dataclass(frozen=True)
class Role:
    """One role of the policy: what it allows and what it explicitly denies."""

    name: str
    description: str
    allow: tuple[str, ...]
    deny: tuple[str, ...] = ()

    def allows(self, action: str) -> str | None:
        """The first allow pattern covering ``action``, if any."""
        return next((p for p in self.allow if fnmatch.fnmatchcase(action, p)), None)

    def denies(self, action: str) -> str | None:
        """The first deny pattern covering ``action``, if any."""
        return next((p for p in self.deny if fnmatch.fnmatchcase(action, p)), None)


@dataclass(frozen=True)
class Decision:
    """An allow/deny with the reason a person can read (``ghaf policy check`` prints it)."""

    allowed: bool
    reason: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grants:
    """The roles an actor holds in one project, allowed and explicitly denied."""

    allow: frozenset[str] = field(default_factory=frozenset)
    deny: frozenset[str] = field(default_factory=frozenset)


class Policy:
    """The RBAC policy table: roles with allow/deny action patterns (see ``policy.yaml``)."""

    def __init__(self, roles: Mapping[str, Role]) -> None:
        self.roles = dict(roles)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "policy") -> Policy:
        """Build from the parsed YAML, expanding ``includes``.

        Raises:
            ConfigError: unknown keys, an unknown included role, or a cycle.
        """
        raw = data.get("roles")
        if data.get("version") != 1 or not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected 'version: 1' and a 'roles' mapping")

        def expand(name: str, seen: tuple[str, ...]) -> tuple[list[str], list[str]]:
            if name not in raw:
                raise ConfigError(f"{where}: role {seen[-1]!r} includes unknown role {name!r}")
            if name in seen:
                raise ConfigError(f"{where}: roles include each other: {' -> '.join(seen)}")
            spec = raw[name] or {}
            unknown = set(spec) - {"description", "includes", "allow", "deny"}
            if unknown:
                raise ConfigError(f"{where}: role {name!r} has unknown key {sorted(unknown)[0]!r}")
            allow = [str(p) for p in spec.get("allow", [])]
            deny = [str(p) for p in spec.get("deny", [])]
            for included in spec.get("includes", []):
                more_allow, more_deny = expand(str(included), (*seen, name))
                allow += more_allow
                deny += more_deny
            return allow, deny

        roles = {}
        for name, spec in raw.items():
            allow, deny = expand(name, ())
            description = str((spec or {}).get("description", ""))
            roles[name] = Role(name, description, tuple(dict.fromkeys(allow)), tuple(deny))
        return cls(roles)

    @classmethod
    def default(cls) -> Policy:
        """The policy shipped in ``ghaf/security/policy.yaml``."""
        return _default_policy()

    def check_role(self, role: str) -> Role:
        """The role called ``role``.

        Raises:
            InvalidInputError: no such role (the hint lists them).
        """
        if role not in self.roles:
            raise InvalidInputError(
                f"role {role!r} is not in the policy", hint=f"use one of {', '.join(self.roles)}"
            )
        return self.roles[role]

    def decide(self, grants: Grants, action: str) -> Decision:
        """Explicit deny wins, then any allow, else deny by default."""
        held = tuple(sorted(r for r in grants.allow if r in self.roles))
        for name in sorted(grants.allow | grants.deny):
            role = self.roles.get(name)
            pattern = role.denies(action) if role is not None else None
            if pattern is not None:
                return Decision(False, f"role {name} explicitly denies {pattern!r}", held)
        for name in sorted(grants.deny):
            role = self.roles.get(name)
            pattern = role.allows(action) if role is not None else None
            if pattern is not None:
                return Decision(False, f"a deny binding of role {name} covers {pattern!r}", held)
        for name in held:
            pattern = self.roles[name].allows(action)
            if pattern is not None:
                return Decision(True, f"role {name} allows {pattern!r}", held)
        if not held:
            return Decision(False, "no role in this project (deny by default)", held)
        return Decision(False, f"none of {', '.join(held)} covers it (deny by default)", held)

    def allowed_roles(self, action: str) -> list[str]:
        """Roles that, alone, would be allowed ``action`` (for hints)."""
        return [n for n in self.roles if self.decide(Grants(frozenset({n})), action).allowed]


@cache
def _default_policy() -> Policy:
    text = resources.files("ghaf.security").joinpath("policy.yaml").read_text(encoding="utf-8")
    return Policy.from_mapping(yaml.safe_load(text), where="ghaf/security/policy.yaml")


def grants_in(roles: Iterable[str], project: str) -> Grants:
    """Pick the grants (``[!]PROJECT:ROLE`` strings) that count in ``project``."""
    allow: set[str] = set()
    deny: set[str] = set()
    for entry in roles:
        if entry.startswith("@"):
            continue
        negative = entry.startswith("!")
        scope, _, role = entry.lstrip("!").rpartition(":")
        if scope in (project, ALL_PROJECTS):
            (deny if negative else allow).add(role)
    return Grants(frozenset(allow), frozenset(deny))


def bound_roles(session: Session, name: str, groups: Iterable[str] = ()) -> frozenset[str]:
    """Every binding of ``name`` and its groups (stored and given), as grant strings."""
    member_of = session.execute(
        select(GroupMemberRow.group_name).where(GroupMemberRow.member == name)
    ).scalars()
    subjects = {name, *(f"group:{g}" for g in (*groups, *member_of))}
    rows = session.execute(
        select(RoleBindingRow).where(RoleBindingRow.subject.in_(sorted(subjects)))
    ).scalars()
    return frozenset(
        f"{'!' if row.effect == 'deny' else ''}{row.project}:{row.role}" for row in rows
    )


HOME_ACTIONS = ("home.",)
"""Actions on the home itself (init, transfer of ownership): its owner's alone."""
KEY_ACTIONS = ("keys.",)
"""Actions on the home's keys: its owner's, and those of roles bound on '*' that allow
them (``key_custodian``); a binding in one project never reaches them."""
BACKUP_ACTIONS = ("backup.",)
"""Backups copy every project's data with the wrapped keys: like the keys, they are the
owner's and those of roles bound on '*' that allow them (``backup_operator``)."""
OWNER_ROLES = (
    "viewer",
    "data_engineer",
    "data_scientist",
    "model_approver",
    "release_manager",
    "sre",
    "project_admin",
    "auditor",
    "privacy_officer",
)
"""Roles ``ghaf init`` binds the home's owner to on every project (never the service roles)."""


BINDINGS_TTL = 1.0
"""Seconds a principal's stored bindings are reused: every governed operation of the
home's owner is authorized from them, and reading them costs ~0.5 ms. A change made in
this process is seen at once (:meth:`RbacAuthorizer.forget_bindings`); one made by
another process within this many seconds."""


class RbacAuthorizer:
    """The spine's Authorizer: the policy table over role bindings; deny by default."""

    def __init__(
        self,
        policy: Policy,
        sessions: Callable[[], Session],
        *,
        owner: Callable[[], str | None] = lambda: None,
        ttl: float = BINDINGS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._sessions = sessions
        self._owner = owner
        self._ttl = ttl
        self._clock = clock
        self._bound: dict[str, tuple[frozenset[str], float]] = {}

    def forget_bindings(self) -> None:
        """Drop the cached bindings (after this process changed some)."""
        self._bound.clear()

    def _bindings_of(self, name: str) -> frozenset[str]:
        now = self._clock()
        cached = self._bound.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._sessions() as session:
            roles = bound_roles(session, name)
        self._bound[name] = (roles, now + self._ttl)
        return roles

    def grants(self, actor: Actor, project: str) -> Grants:
        """What ``actor`` holds in ``project``: from its credential or from the bindings."""
        if CREDENTIAL_MARKER in actor.roles:
            return grants_in(actor.roles, project)
        return grants_in(self._bindings_of(actor.name) | actor.roles, project)

    def decide(self, actor: Actor, action: str, project: str) -> Decision:
        """The decision for ``actor`` doing ``action`` in ``project``, with its reason."""
        if actor.credential is None:
            return Decision(False, "not authenticated (identity is proven, never asserted)")
        if action.startswith(HOME_ACTIONS):
            return self._decide_home(actor)
        if action.startswith(KEY_ACTIONS + BACKUP_ACTIONS):
            return self._decide_keys(actor, action)
        return self.policy.decide(self.grants(actor, project), action)

    def _decide_keys(self, actor: Actor, action: str) -> Decision:
        owner = self._decide_home(actor)
        if owner.allowed:
            return owner
        # Home-wide whatever the request's project: one project's binding never
        # reaches the keys that protect every project's artifacts.
        decision = self.policy.decide(self.grants(actor, ALL_PROJECTS), action)
        if decision.allowed:
            return Decision(
                True, f"{decision.reason}, bound on every project ('*')", decision.roles
            )
        why = decision.reason if decision.roles else "no role on every project (deny by default)"
        return Decision(
            False,
            f"{why}; the home's keys and backups take a role bound on '*', or the home's owner "
            f"({self._owner()}) signed in to its OS account",
            decision.roles,
        )

    def _decide_home(self, actor: Actor) -> Decision:
        owner = self._owner()
        local = actor.credential is not None and actor.credential.kind == "home-owner"
        if local and owner is None:
            return Decision(True, "the OS account initialising a new home becomes its owner")
        if local and actor.name == owner:
            return Decision(True, "the home's owner")
        return Decision(False, f"only the home's owner ({owner}), signed in to its OS account")

    def authorize(self, actor: Actor, action: str, resource: str, project: str) -> None:
        decision = self.decide(actor, action, project)
        if not decision.allowed:
            roles = ", ".join(self.policy.allowed_roles(action)) or "the home's owner only"
            if action.startswith(KEY_ACTIONS + BACKUP_ACTIONS):
                roles = f"{roles} bound on '*', or the home's owner"
            raise PermissionDeniedError(
                f"{actor.name!r} may not {action} {resource} in project {project!r}: "
                f"{decision.reason}",
                hint=f"roles that may: {roles}",
            )


def read_action(kind: str, tags: Iterable[str]) -> str:
    """``KIND.read_pii`` when any tag is sensitive (pii, sensitive), else ``KIND.read``."""
    return f"{kind}.read_pii" if SENSITIVE_TAGS & set(tags) else f"{kind}.read"
