"""The spine: allowed, denied and failed operations are each audited exactly once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ghaf.errors import InvalidInputError, PermissionDeniedError, SpineBypassError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.projects import create_project, list_projects
from ghaf.security.audit import AuditLog
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor, Credential
from ghaf.settings import GhafSettings
from ghaf.spine import current_session, governed


def _records(platform: Platform) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        return list(session.execute(select(AuditRecordRow).order_by(AuditRecordRow.seq)).scalars())


def test_denied_is_audited_and_changes_nothing(platform: Platform) -> None:
    mallory = Actor(
        "mallory", source="10.0.0.9", request_id="r-1", credential=Credential("token", "t1")
    )
    with pytest.raises(PermissionDeniedError, match="mallory"):
        create_project(platform, mallory, "stolen")
    assert list_projects(platform) == []
    last = _records(platform)[-1]
    assert (last.actor, last.action, last.outcome) == ("mallory", "project.create", "denied")
    assert (last.source, last.request_id) == ("10.0.0.9", "r-1")
    with platform.read_session() as session:
        assert AuditLog().first_broken(session) is None


def test_an_actor_without_a_credential_acts_as_nobody(platform: Platform) -> None:
    """A name in a constructor is an assertion: refused and audited, even the owner's name."""
    asserted = Actor(platform.admin().name)
    with pytest.raises(PermissionDeniedError, match="not authenticated"):
        create_project(platform, asserted, "asserted")
    assert list_projects(platform) == []
    last = _records(platform)[-1]
    assert (last.action, last.outcome) == ("project.create", "denied")
    assert "not authenticated" in last.details


def test_failed_is_audited_and_rolled_back(platform: Platform) -> None:
    with pytest.raises(InvalidInputError, match="project name"):
        create_project(platform, platform.admin(), "Not Valid")
    last = _records(platform)[-1]
    assert last.outcome == "failed"
    assert "project name" in last.details


def test_nested_operation_is_one_record(platform: Platform) -> None:
    @governed("dataset.test_outer", resource="thing:{name}")
    def outer(platform: Platform, actor: Actor, name: str) -> None:
        create_project(platform, actor, name)

    try:
        before = len(_records(platform))
        outer(platform, platform.admin(), "nested")
        records = _records(platform)
        assert len(records) == before + 1
        assert records[-1].action == "dataset.test_outer"
        assert "project.create project:nested" in records[-1].details
        assert [p.name for p in list_projects(platform)] == ["nested"]
    finally:
        from ghaf.spine import WRITE_OPERATIONS

        WRITE_OPERATIONS.pop("dataset.test_outer", None)


def test_current_session_outside_an_operation_is_refused() -> None:
    with pytest.raises(SpineBypassError):
        current_session()


def test_registering_an_action_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        governed("project.create", resource="x")(lambda platform, actor: None)


def test_audit_chain_detects_an_edited_row(settings: GhafSettings) -> None:
    platform = init_home(settings)
    try:
        for name in ("a", "b", "c"):
            create_project(platform, platform.admin(), name)
        owner = platform.admin()
        with platform.spine.operation(owner, "dataset.test_tamper", "x", "default") as op:
            row = op.session.get(AuditRecordRow, 2)
            assert row is not None
            row.actor = "someone-else"
        with platform.read_session() as session:
            assert AuditLog().first_broken(session) == 2
    finally:
        platform.close()
