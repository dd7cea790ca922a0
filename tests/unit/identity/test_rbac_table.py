"""Every governed action as every role, against the policy table written out by hand here.

The table below is the reviewed expectation; it is deliberately not derived from
``policy.yaml``. A difference is either an escalation (the policy allows more than the
table) or a lost permission, and fails. Denied attempts go through the real spine and
must each leave one ``denied`` audit record.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from sqlalchemy import func, select

import ghaf
from ghaf.access.bindings import bind_role
from ghaf.errors import PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor, Credential
from ghaf.security.rbac import CREDENTIAL_MARKER, OWNER_ROLES, Policy, RbacAuthorizer, bound_roles
from ghaf.spine import WRITE_OPERATIONS

ROLES = (
    "viewer",
    "data_engineer",
    "data_scientist",
    "model_approver",
    "release_manager",
    "sre",
    "project_admin",
    "auditor",
    "key_custodian",
    "backup_operator",
    "ci_publisher",
    "model_server",
    "privacy_officer",
)
READERS = {"viewer", "data_engineer", "data_scientist", "model_approver", "release_manager", "sre"}
READERS |= {"privacy_officer"}  # it reads what it erases (viewer)
MEMBERSHIP = {"principal.create", "group.add_member", "role.bind", "role.unbind"}
MEMBERSHIP |= {"token.create", "token.revoke"}

EXPECTED: dict[str, set[str]] = {
    # the home: its owner alone; its keys: its owner and key custodians bound on '*',
    # never a role bound in one project (as here; see test_home_and_key_actions_...)
    "home.init": set(),
    "home.transfer": set(),
    "home.login_link": set(),  # the owner's alone, as every home.* action
    "home.login_link_open": set(),
    "keys.rotate": set(),
    "keys.destroy_version": set(),
    "keys.trust": set(),
    "keys.read": set(),
    # backups copy every project: the owner and backup operators bound on '*' (as keys)
    "backup.create": set(),
    "backup.restore": set(),
    "project.create": {"project_admin"},
    # data
    "dataset.write": {"data_engineer"},
    "dataset.ingest": {"data_engineer"},
    "dataset.ingest_stream": {"data_engineer"},
    "transform.run": {"data_engineer"},
    "features.apply": {"data_engineer"},
    "features.materialize": {"data_engineer"},
    "features.save_training_set": {"data_engineer", "data_scientist"},
    # the job queue: data engineers queue, cancel and reorder; dispatchers are sre; quotas
    # are project_admin's. The dispatcher's actions and quotas are authorized in project
    # '*' (test_doors: a project-bound admin may not set one), here the policy's table.
    "job.submit": {"data_engineer"},
    "job.cancel": {"data_engineer", "sre"},
    "job.priority": {"data_engineer"},
    "job.claim": {"sre"},
    "job.finish": {"sre"},
    "job.heartbeat": {"sre"},
    "job.reclaim": {"sre"},
    "quota.set": {"project_admin"},
    "quota.clear": {"project_admin"},
    "pipeline.run_start": {"data_engineer"},
    "pipeline.step_update": {"data_engineer"},
    "pipeline.run_finish": {"data_engineer"},
    "prediction.export": {"data_engineer", "data_scientist"},
    # tracking and registry
    "experiment.create": {"data_scientist", "ci_publisher"},
    "run.create": {"data_scientist", "ci_publisher"},
    "run.log_batch": {"data_scientist", "ci_publisher"},
    "run.end": {"data_scientist", "ci_publisher"},
    "run.log_artifacts": {"data_scientist", "ci_publisher"},
    "run.log_inputs": {"data_scientist", "ci_publisher"},
    "model.upload": {"data_engineer", "data_scientist", "ci_publisher"},
    "model.register": {"data_scientist", "ci_publisher"},
    "model.card_update": {"data_scientist", "ci_publisher"},
    "model.approve": {"model_approver"},
    "model.promote": {"release_manager"},
    "model.alias": {"release_manager"},
    "model.alias_delete": {"release_manager"},
    # the release path: the policy is governance; break-glass needs two people
    "release_policy.set": {"project_admin"},
    "model.break_glass_request": {"release_manager"},
    "model.break_glass": {"release_manager", "model_approver"},
    # gates: the risk owner sets the bar, the release manager attaches it; authors never
    "gate_policy.add": {"model_approver", "release_manager"},
    "gate_policy.attach": {"model_approver", "release_manager"},
    # custom model code: the approver allows, per project, what it may import
    "code_policy.set": {"model_approver"},
    # operations
    "monitoring.profile.save": {"data_scientist", "sre"},
    # scheduled monitors: SREs schedule and run them (a run stores results and alerts)
    "monitoring.schedule": {"sre"},
    "monitoring.run": {"sre"},
    "audit.checkpoint": {"auditor"},
    # audit shipping: auditors advance the sinks' cursors; SREs watch the lag
    "audit.ship": {"auditor"},
    "audit.sinks.read": {"auditor", "sre"},
    # right to erasure and retention: privacy officers act (home-wide); auditors read
    "erasure.subject": {"privacy_officer"},
    "erasure.dataset": {"privacy_officer"},
    "retention.run": {"privacy_officer"},
    "erasure.read": {"privacy_officer", "auditor"},
    "retention.read": {"privacy_officer", "auditor"},
    # identity
    **{action: {"project_admin"} for action in MEMBERSHIP},
    # sensitive and ordinary reads (authorize_read)
    "audit.read": {"auditor"},
    # the ISO 27001 evidence report: auditors, and admins (an access review among it)
    "compliance.read": {"auditor", "project_admin"},
    "dataset.read_pii": {"data_engineer"},
    "dataset.read": READERS,
    "model.read": READERS | {"model_server"},
    # the data-plane servers (ghaf serve, ghaf features serve), per request
    "model.predict": {"release_manager", "sre", "model_server"},
    "features.read": READERS | {"model_server"},
    "features.read_pii": {"data_engineer"},
    "monitoring.read": READERS,
    # cost: every reader sees the project's costs; who runs the work records its usage
    "cost.read": READERS,
    "usage.record": {"data_engineer", "data_scientist", "release_manager"},
    # actions nobody has defined: deny by default
    "made.up": set(),
    "deployment.create": {"release_manager"},
    "deployment.update": {"release_manager"},
    # the closed loop deploys and canaries a retrained candidate: release managers set
    # its policy, and the loop's hops act as they would
    **{
        f"deployment.retrain_{verb}": {"release_manager"}
        for verb in ("set", "delete", "trigger", "record", "gates", "deploy")
    },
    # A/B experiments move traffic: release managers; everyone who reads, reads them
    "traffic.experiment_create": {"release_manager"},
    "traffic.experiment_start": {"release_manager"},
    "traffic.experiment_stop": {"release_manager"},
    "traffic.experiment_decide": {"release_manager"},
    # canaries ramp and promote: release managers; an SRE may stop one (pause, roll back)
    "traffic.canary_start": {"release_manager"},
    "traffic.canary_evaluate": {"release_manager"},
    "traffic.canary_resume": {"release_manager"},
    "traffic.canary_pause": {"release_manager", "sre"},
    "traffic.canary_rollback": {"release_manager", "sre"},
    "traffic.read": READERS,
    # outcomes of served predictions: the scoring application, and label imports
    "model.feedback": {"release_manager", "model_server"},
    # alerts and incidents: SREs act; every reader sees them
    "alert.ingest": {"sre"},
    "alert.resolve": {"sre"},
    "alert.deliver": {"sre"},
    **{
        f"incident.{verb}": {"sre"}
        for verb in (
            "ack",
            "hold",
            "resume",
            "resolve",
            "close",
            "cancel",
            "reopen",
            "assign",
            "note",
            "record",
        )
    },
    "alert.read": READERS,
    # SLO definitions set what pages people: SREs
    "slo.define": {"sre"},
    "slo.delete": {"sre"},
    "slo.fire": {"sre"},  # its verdicts open incidents
    "slo.schedule": {"sre"},
    "slo.unschedule": {"sre"},
    "slo.scrape": {"sre"},  # the live loop's reads (as the owner, who holds sre on '*')
    "incident.read": READERS,
}

_SKIP = ("ghaf.__main__", "ghaf.cli", "ghaf.testing", "ghaf.demo", "ghaf.metadata.migrations")


def _all_actions() -> list[str]:
    for info in pkgutil.walk_packages(ghaf.__path__, "ghaf."):
        if not info.name.startswith(_SKIP):
            importlib.import_module(info.name)
    return sorted(set(WRITE_OPERATIONS) | set(EXPECTED))


def _actor(role: str) -> Actor:
    return Actor(
        f"user-{role}",
        roles=frozenset({CREDENTIAL_MARKER, f"fraud:{role}"}),
        credential=Credential("token", role),
    )


def _local(name: str) -> Actor:
    """An authenticated actor whose grants come from the bindings in the store."""
    return Actor(name, credential=Credential("home-owner", f"uid:{name}"))


def _denied_count(platform: Platform) -> int:
    with platform.read_session() as session:
        return session.execute(
            select(func.count())
            .select_from(AuditRecordRow)
            .where(AuditRecordRow.outcome == "denied")
        ).scalar_one()


@pytest.mark.parametrize("role", ROLES)
def test_every_action_as_role_matches_the_table_and_denials_are_audited(
    platform: Platform, role: str
) -> None:
    actor = _actor(role)
    escalations, lost = [], []
    for action in _all_actions():
        before = _denied_count(platform)
        try:
            with platform.spine.operation(actor, action, f"thing:{action}", "fraud"):
                pass
            allowed = True
        except PermissionDeniedError:
            allowed = False
            assert _denied_count(platform) == before + 1, f"{action} denial not audited"
        if action in EXPECTED:
            expected = role in EXPECTED[action]
            if allowed and not expected:
                escalations.append(action)
            elif expected and not allowed:
                lost.append(action)
        elif allowed:
            # A governed action the table has not reviewed yet: no guard role may hold it.
            guarded = {"viewer", "auditor", "model_server", "model_approver", "project_admin"}
            if role in guarded:
                escalations.append(action)
    assert escalations == [], f"{role} is allowed more than the table: {escalations}"
    assert lost == [], f"{role} lost permissions the table grants: {lost}"


@pytest.mark.parametrize("role", ROLES)
def test_roles_count_only_in_their_project(platform: Platform, role: str) -> None:
    actor = _actor(role)
    for action in _all_actions():
        with pytest.raises(PermissionDeniedError):
            platform.spine.authorizer.authorize(actor, action, "x", "another-project")


def test_no_roles_means_nothing(platform: Platform) -> None:
    nobody = _local("nobody")
    for action in _all_actions():
        with pytest.raises(PermissionDeniedError, match=r"deny by default|home's owner"):
            platform.spine.authorizer.authorize(nobody, action, "x", "fraud")


def _token(*grants: str) -> Actor:
    return Actor(
        "tess", roles=frozenset({CREDENTIAL_MARKER, *grants}), credential=Credential("token", "t")
    )


KEY_ACTIONS = ("keys.rotate", "keys.destroy_version", "keys.trust", "keys.read")


def test_home_actions_are_the_owners_alone(platform: Platform) -> None:
    """Every role on every project through a token, or another OS account: still refused."""
    authz = platform.spine.authorizer
    owner = platform.admin()
    everything = Actor(
        owner.name,  # even under the owner's own name, a token is not the OS account
        roles=frozenset({CREDENTIAL_MARKER, *(f"*:{r}" for r in ROLES)}),
        credential=Credential("token", "all"),
    )
    authz.authorize(owner, "home.transfer", "home", "fraud")
    for who in (everything, _local("mallory")):
        with pytest.raises(PermissionDeniedError, match="only the home's owner"):
            authz.authorize(who, "home.transfer", "home", "fraud")


def test_key_actions_are_the_owners_and_home_wide_key_custodians(platform: Platform) -> None:
    """A key custodian bound on '*' holds keys.* in any request's project; bound in one
    project, it holds none of them, even in that project; no other role holds them but
    the auditor's keys.read (on '*' too); a deny binding on '*' wins."""
    authz = platform.spine.authorizer
    for action in KEY_ACTIONS:
        authz.authorize(platform.admin(), action, "home", "fraud")
        for project in ("fraud", "*"):
            authz.authorize(_token("*:key_custodian"), action, "kek:home", project)
            for who in (
                _token("fraud:key_custodian"),
                _token(*(f"*:{r}" for r in ROLES if r not in ("key_custodian", "auditor"))),
                _token("*:key_custodian", "!*:key_custodian"),
                _local("mallory"),
            ):
                with pytest.raises(PermissionDeniedError, match="bound on '\\*'") as refused:
                    authz.authorize(who, action, "kek:home", project)
                assert "key_custodian bound on '*', or the home's owner" in str(refused.value.hint)
    authz.authorize(_token("*:auditor"), "keys.read", "keys:home", "*")
    with pytest.raises(PermissionDeniedError):
        authz.authorize(_token("*:auditor"), "keys.rotate", "kek:home", "*")
    with pytest.raises(PermissionDeniedError):
        authz.authorize(_token("fraud:auditor"), "keys.read", "keys:home", "fraud")


def test_backups_are_the_owners_and_home_wide_backup_operators(platform: Platform) -> None:
    """Backups copy every project's data: a backup operator bound on '*' may, one bound in
    one project may not (even there), nor any other role on '*', nor a key custodian."""
    authz = platform.spine.authorizer
    authz.authorize(platform.admin(), "backup.create", "backup:x", "*")
    for project in ("fraud", "*"):
        authz.authorize(_token("*:backup_operator"), "backup.create", "backup:x", project)
        for who in (
            _token("fraud:backup_operator"),
            _token(*(f"*:{r}" for r in ROLES if r != "backup_operator")),
            _token("*:backup_operator", "!*:backup_operator"),
            _local("mallory"),
        ):
            with pytest.raises(PermissionDeniedError, match="bound on '\\*'") as refused:
                authz.authorize(who, "backup.create", "backup:x", project)
            assert "backup_operator bound on '*', or the home's owner" in str(refused.value.hint)


def test_bindings_in_the_store_decide_like_credentials(platform: Platform) -> None:
    authz = platform.spine.authorizer
    assert isinstance(authz, RbacAuthorizer)
    for role in ROLES:
        bind_role(platform, platform.admin(), f"bound-{role}", role, project="fraud")
    for role in ROLES:
        stored, carried = _local(f"bound-{role}"), _actor(role)
        for action in EXPECTED:
            assert (
                authz.decide(stored, action, "fraud").allowed
                == authz.decide(carried, action, "fraud").allowed
            ), (role, action)


def test_explicit_deny_wins(platform: Platform) -> None:
    authz = platform.spine.authorizer
    bind_role(platform, platform.admin(), "dana", "data_engineer", project="*")
    bind_role(platform, platform.admin(), "group:contractors", "data_engineer", project="fraud")
    authz.authorize(_local("dana"), "dataset.write", "d", "fraud")
    # A deny binding on a group dana is in (per the store) refuses what her own role allows.
    from ghaf.access.bindings import add_group_member, create_principal

    create_principal(platform, platform.admin(), "contractors", kind="group")
    add_group_member(platform, platform.admin(), "contractors", "dana")
    bind_role(
        platform,
        platform.admin(),
        "group:contractors",
        "data_engineer",
        project="fraud",
        effect="deny",
    )
    with pytest.raises(PermissionDeniedError, match="deny binding"):
        authz.authorize(_local("dana"), "dataset.write", "d", "fraud")
    authz.authorize(_local("dana"), "dataset.write", "d", "other")
    # A role's deny pattern beats another role's allow: CI never deploys.
    both = Actor(
        "ci",
        roles=frozenset({CREDENTIAL_MARKER, "fraud:ci_publisher", "fraud:release_manager"}),
        credential=Credential("token", "ci"),
    )
    with pytest.raises(PermissionDeniedError, match="explicitly denies"):
        authz.authorize(both, "model.promote", "m", "fraud")


def test_the_home_owner_holds_the_human_roles_as_bindings_with_no_bypass(
    platform: Platform,
) -> None:
    authz = platform.spine.authorizer
    assert isinstance(authz, RbacAuthorizer)
    owner = platform.admin()
    for action, roles in EXPECTED.items():
        expected = bool(roles & set(OWNER_ROLES)) or action.startswith(
            ("home.", "keys.", "backup.")
        )
        # (the owner holds keys.* as the owner, not through key_custodian: not an OWNER_ROLE)
        assert authz.decide(owner, action, "fraud").allowed == expected, action
    with platform.read_session() as session:
        assert bound_roles(session, owner.name) == {f"*:{r}" for r in OWNER_ROLES}
    scoped = Actor(
        platform.admin().name,
        roles=frozenset({CREDENTIAL_MARKER, "fraud:viewer"}),
        credential=Credential("token", "scoped"),
    )
    with pytest.raises(PermissionDeniedError):
        authz.authorize(scoped, "project.create", "x", "fraud")


def test_policy_file_roles_are_the_documented_set() -> None:
    assert set(Policy.default().roles) == set(ROLES)


def test_every_governed_action_is_reviewed_in_the_table() -> None:
    """A new governed action must be added to EXPECTED: no action escapes the table."""
    unreviewed = sorted(set(_all_actions()) - set(EXPECTED))
    assert unreviewed == [], f"add these actions to EXPECTED: {unreviewed}"
