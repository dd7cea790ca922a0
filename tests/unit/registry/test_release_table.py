"""Zero escalations on the release path: every door × release action × role × who.

The expectation of each attempt is computed from the shipped policy files, not from a
copy: the RBAC table (``ghaf/security/policy.yaml``) says which roles may ask, and the
release policy (:data:`ghaf.registry.release.DEFAULT_POLICY`, the one in force) says
what a version needs before a protected alias, stage or deployment. An *escalation* is
an attempt the files refuse that a door let through; the test also checks that what
the files allow does go through, so it cannot pass by refusing everything.

Doors: the SDK (service calls with the actor a credential proved) and the CLI (the
Typer app, in-process, with ``--token``). Who: a person holding the role who authored
the version, another person holding it, the home's owner, and someone anonymous (no
credential; on the CLI a token that does not verify).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghaf.access.tokens import verify_token
from ghaf.cli.main import app
from ghaf.errors import GhafError
from ghaf.platform import Platform
from ghaf.registry import get_model_version, register_model, transition_model_version
from ghaf.registry.break_glass import list_break_glass, request_break_glass
from ghaf.registry.release import policy_in
from ghaf.security.identity import Actor
from ghaf.security.rbac import Grants, Policy
from ghaf.testing.people import mint

RBAC = Policy.default()
ROLES = sorted(RBAC.roles)
WHO = ("author", "other", "owner", "anonymous")
REASON = "INC-7: champion broken since 09:10, restoring the last good version"


def rbac_allows(role: str, action: str) -> bool:
    return RBAC.decide(Grants(frozenset({role})), action).allowed


@dataclass
class Attempt:
    door: str
    action: str
    role: str | None
    who: str
    allowed: bool
    expected: bool
    detail: str


@dataclass
class World:
    """A home with people, an unapproved version (fraud:1) and an approvable one (fraud:2)."""

    platform: Platform
    tokens: dict[tuple[str, str], str]  # (who, role) -> token secret

    def actor(self, who: str, role: str | None) -> Actor | None:
        if who == "owner":
            return self.platform.admin()
        if who == "anonymous":
            return None
        return verify_token(self.platform, self.tokens[(who, str(role))])

    def cli_args(self, who: str, role: str | None) -> list[str]:
        if who == "owner":
            return []
        if who == "anonymous":
            return ["--token", "ghaf_0000000000000000_" + "x" * 43]
        return ["--token", self.tokens[(who, str(role))]]


@pytest.fixture
def world(platform: Platform, model_dir: Path) -> Iterator[World]:
    tokens: dict[tuple[str, str], str] = {}
    for role in ROLES:
        # ana authors the versions; each of her tokens carries only ROLE.
        tokens[("author", role)] = mint(platform, "ana", [role])
        tokens[("other", role)] = mint(platform, f"other-{role}", [role])
    tokens[("rita", "release_manager")] = mint(platform, "rita", ["release_manager"])
    ana = verify_token(platform, mint(platform, "ana", ["data_scientist"]))
    for _ in range(2):
        register_model(platform, ana, "fraud", model_dir)
    transition_model_version(platform, platform.admin(), "fraud:1", "staging")
    yield World(platform, tokens)


def _expected(world: World, action: str, role: str | None, who: str, version: str) -> bool:
    """What the policy files say about one attempt."""
    if who == "anonymous":
        return False
    holds = role is None or rbac_allows(role, action)  # the owner holds its bindings
    if who == "owner":
        holds = world.platform.spine.authorizer.decide(  # type: ignore[attr-defined]
            world.platform.admin(), action, "default"
        ).allowed
    if not holds:
        return False
    with contextlib.closing(world.platform.read_session()) as session:
        release = policy_in(session, "default").policy
    if action in ("model.alias", "model.promote", "deployment.create"):
        # fraud:1 has no approval: the release policy refuses it on every protected target.
        unmet = release.requires.approvals > len(
            get_model_version(world.platform, version).approvals
        )
        return not unmet
    if action == "model.approve":
        # four eyes: not the author; the owner minted ana's token, so it is no second person
        return who == "other" or (who == "owner" and release.self_minted_approvals == "flag")
    if action == "model.break_glass":
        return who != "owner" or release.self_minted_approvals == "flag"  # owner minted rita's
    return True


def _sdk_call(world: World, action: str, actor: Actor | None, n: int) -> Callable[[], object]:
    from ghaf.registry import approve_model_version, set_alias
    from ghaf.registry.break_glass import confirm_break_glass
    from ghaf.registry.release import DEFAULT_POLICY, set_release_policy
    from ghaf.serving.deployments import create_deployment

    p = world.platform
    who = actor or Actor("anonymous")  # a name with no credential: acts as nobody
    calls: dict[str, Callable[[], object]] = {
        "model.alias": lambda: set_alias(p, who, "fraud", "champion", 1),
        "model.promote": lambda: transition_model_version(p, who, "fraud:1", "production"),
        "deployment.create": lambda: create_deployment(p, who, f"d{n}", ["fraud:1"]),
        "model.approve": lambda: approve_model_version(p, who, "fraud:2"),
        "model.break_glass_request": lambda: request_break_glass(
            p, who, "fraud", 1, alias="champion", reason=REASON
        ),
        "model.break_glass": lambda: confirm_break_glass(p, who, _fresh_request(world)),
        "release_policy.set": lambda: set_release_policy(p, who, "default", DEFAULT_POLICY),
    }
    return calls[action]


def _cli_args(world: World, action: str) -> list[str] | None:
    commands = {
        "model.alias": ["models", "alias", "fraud", "champion", "1"],
        "model.promote": ["models", "promote", "fraud:1", "production"],
        "model.approve": ["models", "approve", "fraud:2"],
        "model.break_glass_request": [
            "models",
            "break-glass",
            "request",
            "fraud:1",
            "--alias",
            "champion",
            "--reason",
            REASON,
        ],
        "release_policy.set": ["policy", "release", "set", str(_policy_file(world))],
    }
    if action == "model.break_glass":
        return ["models", "break-glass", "confirm", str(_fresh_request(world))]
    return commands.get(action)  # deployments have no CLI door yet (`ghaf serve` blocks)


def _fresh_request(world: World) -> int:
    """A pending break-glass request by rita (a release manager), for one confirmation."""
    rita = verify_token(world.platform, world.tokens[("rita", "release_manager")])
    request_break_glass(world.platform, rita, "fraud", 1, alias="champion", reason=REASON)
    return list_break_glass(world.platform, pending_only=True)[0].id


def _policy_file(world: World) -> Path:
    from ghaf.registry.release import DEFAULT_POLICY

    path = world.platform.settings.home / "release.yaml"
    path.write_text(DEFAULT_POLICY)
    return path


ACTIONS = (
    "model.alias",
    "model.promote",
    "deployment.create",
    "model.approve",
    "model.break_glass_request",
    "model.break_glass",
    "release_policy.set",
)


def _cases() -> Iterator[tuple[str, str | None]]:
    for role in ROLES:
        yield "author", role
        yield "other", role
    yield "owner", None
    yield "anonymous", None


@pytest.mark.slow
def test_no_door_lets_anyone_past_the_release_policy(world: World) -> None:
    runner = CliRunner()
    attempts: list[Attempt] = []
    n = 0
    for action in ACTIONS:
        if action == "model.approve":  # every attempt on fraud:1 so far: it moved nowhere
            assert get_model_version(world.platform, "fraud:1").aliases == ()
            assert get_model_version(world.platform, "fraud:1").stage == "staging"
        for who, role in _cases():
            expected = _expected(world, action, role, who, "fraud:1")
            n += 1
            call = _sdk_call(world, action, world.actor(who, role), n)
            try:
                call()
                attempts.append(Attempt("sdk", action, role, who, True, expected, ""))
            except GhafError as exc:
                attempts.append(Attempt("sdk", action, role, who, False, expected, exc.headline))
            args = _cli_args(world, action)
            if args is None:
                continue
            result = runner.invoke(app, [*world.cli_args(who, role), *args])
            ok = result.exit_code == 0
            error = result.exception if isinstance(result.exception, GhafError) else None
            if not ok and error is None and result.exit_code != 0:
                raise AssertionError(f"the CLI crashed on {args}: {result.output}")
            detail = error.headline if error else ""
            attempts.append(Attempt("cli", action, role, who, ok, expected, detail))
    escalations = [a for a in attempts if a.allowed and not a.expected]
    lost = [a for a in attempts if a.expected and not a.allowed]
    assert escalations == [], "escalations:\n" + "\n".join(map(str, escalations))
    assert lost == [], "refused although the policy files allow it:\n" + "\n".join(map(str, lost))
    # break-glass, the sanctioned way past the policy, did move it (two people, a reason)
    assert get_model_version(world.platform, "fraud:1").aliases == ("champion",)
    # Not vacuous: each action was allowed to someone, and refused to someone.
    for action in ACTIONS:
        outcomes = {a.allowed for a in attempts if a.action == action}
        if action in ("model.alias", "model.promote", "deployment.create"):
            assert outcomes == {False}, action  # fraud:1 is unapproved: refused to everyone
        else:
            assert outcomes == {True, False}, action
    cli_actions = len(ACTIONS) - 1  # all but deployment.create
    assert len(attempts) == (2 * len(ROLES) + 2) * (len(ACTIONS) + cli_actions)


def test_the_expectations_come_from_the_shipped_files(world: World) -> None:
    with contextlib.closing(world.platform.read_session()) as session:
        release = policy_in(session, "default")
    assert release.version == 0 and "champion" in release.policy.protected_aliases
    assert rbac_allows("model_approver", "model.approve")
    assert not rbac_allows("data_scientist", "model.approve")
