"""Deployment records: governed create/update, lineage, the release policy, audit records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ghaf.errors import AlreadyExistsError, NotFoundError, PolicyViolationError
from ghaf.lineage import deployments_using, upstream
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model, set_alias
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor, Credential
from ghaf.security.rbac import CREDENTIAL_MARKER
from ghaf.serving.deployments import (
    create_deployment,
    get_deployment,
    list_deployments,
    record_deployment,
    update_deployment,
)
from ghaf.testing.people import person


def _audit(platform: Platform) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        return list(session.execute(select(AuditRecordRow).order_by(AuditRecordRow.seq)).scalars())


def _count(platform: Platform) -> int:
    with platform.read_session() as session:
        return session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()


@pytest.fixture
def two_versions(platform: Platform, trained: Any, tmp_path: Path) -> None:
    """fraud:1 and fraud:2 registered by ana and approved by ben; fraud@champion -> 1."""
    save_model(trained.model, tmp_path / "saved")
    ana = person(platform, "ana", ["data_scientist"])
    ben = person(platform, "ben", ["model_approver"])
    for number in (1, 2):
        register_model(platform, ana, "fraud", tmp_path / "saved")
        approve_model_version(platform, ben, f"fraud:{number}")
    set_alias(platform, platform.admin(), "fraud", "champion", 1)


@pytest.fixture
def unapproved(platform: Platform, trained: Any, tmp_path: Path) -> None:
    """fraud:1 registered by ana, not approved yet."""
    save_model(trained.model, tmp_path / "saved")
    register_model(
        platform, person(platform, "ana", ["data_scientist"]), "fraud", tmp_path / "saved"
    )


def test_create_update_and_lineage(platform: Platform, two_versions: None) -> None:
    before = _count(platform)
    record = create_deployment(
        platform, platform.admin(), "fraud-live", {"fraud@champion": 90, "fraud:2": 10}
    )
    assert _count(platform) == before + 1
    last = _audit(platform)[-1]
    assert (last.action, last.resource, last.outcome) == (
        "deployment.create",
        "deployment:fraud-live",
        "allowed",
    )
    assert record.models == {"fraud:1": 90.0, "fraud:2": 10.0}  # the alias resolved to 1
    assert (record.status, record.revision) == ("active", 1)
    assert record.created_by == platform.admin().name
    assert set(upstream(platform, "deployment:fraud-live")) >= {"model:fraud:1", "model:fraud:2"}
    assert deployments_using(platform, "model:fraud:2") == ["deployment:fraud-live"]

    updated = update_deployment(
        platform, platform.admin(), "fraud-live", models=["fraud:2"], shadow="fraud:1"
    )
    assert _count(platform) == before + 2 and _audit(platform)[-1].action == "deployment.update"
    assert (updated.models, updated.shadow, updated.revision) == ({"fraud:2": 1.0}, "fraud:1", 2)
    stopped = update_deployment(platform, platform.admin(), "fraud-live", status="stopped")
    assert (stopped.status, stopped.shadow) == ("stopped", "fraud:1")
    assert stopped.models == {"fraud:2": 1.0}
    assert get_deployment(platform, "fraud-live") == stopped
    assert [d.name for d in list_deployments(platform)] == ["fraud-live"]
    again = record_deployment(platform, platform.admin(), "fraud-live", ["fraud@champion"])
    assert (again.status, again.models, again.shadow) == ("active", {"fraud:1": 1.0}, None)


def test_bad_deployments_are_refused_and_store_nothing(
    platform: Platform, two_versions: None
) -> None:
    create_deployment(platform, platform.admin(), "d", ["fraud:1"])
    with pytest.raises(AlreadyExistsError):
        create_deployment(platform, platform.admin(), "d", ["fraud:2"])
    with pytest.raises(NotFoundError):
        create_deployment(platform, platform.admin(), "e", ["fraud:9"])
    with pytest.raises(NotFoundError):
        update_deployment(platform, platform.admin(), "nope", status="stopped")
    assert [d.name for d in list_deployments(platform)] == ["d"]
    assert get_deployment(platform, "d").models == {"fraud:1": 1.0}
    assert _audit(platform)[-1].outcome == "failed"


def test_everyone_deploys_only_what_the_release_policy_allows(
    platform: Platform, unapproved: None
) -> None:
    manager = person(platform, "rm", ["release_manager"])
    for who in (manager, platform.admin()):  # the home's owner is no exception
        with pytest.raises(PolicyViolationError, match=r"fraud:1 may not be deployed.*approved"):
            create_deployment(platform, who, "fraud-live", ["fraud:1"])
        assert _audit(platform)[-1].outcome == "denied"
    approve_model_version(platform, person(platform, "ben", ["model_approver"]), "fraud:1")
    set_alias(platform, manager, "fraud", "champion", 1)
    record = create_deployment(platform, manager, "fraud-live", ["fraud@champion"])
    assert record.models == {"fraud:1": 1.0} and record.created_by == "rm"
    ci = Actor(
        "ci", roles=frozenset({CREDENTIAL_MARKER, "*:ci"}), credential=Credential("token", "ci")
    )
    from ghaf.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        update_deployment(platform, ci, "fraud-live", status="stopped")
    assert _audit(platform)[-1].outcome == "denied"


def test_two_servers_recording_one_deployment_at_once_both_succeed(
    platform: Platform, two_versions: None
) -> None:
    """Two `ghaf serve` of one model started together both read "no record" and both
    create it: the one that loses the race updates the record instead of failing."""
    import threading

    admin = platform.admin()
    for name in ("a", "b", "c", "d"):
        barrier = threading.Barrier(2)
        outcomes: list[Any] = []

        def start(
            deployment: str = name, gate: threading.Barrier = barrier, out: list[Any] = outcomes
        ) -> None:
            gate.wait(10)
            try:
                out.append(record_deployment(platform, admin, deployment, ["fraud:1"]))
            except Exception as exc:  # the race's loser, before the fix
                out.append(exc)

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [type(o).__name__ for o in outcomes] == ["Deployment", "Deployment"], outcomes
        assert get_deployment(platform, name).models == {"fraud:1": 1.0}
    assert sorted(d.name for d in list_deployments(platform)) == ["a", "b", "c", "d"]
