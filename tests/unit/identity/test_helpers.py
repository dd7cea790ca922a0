"""Sensitive reads and bearer authentication helpers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ghaf.access.authorize import authorize_read
from ghaf.access.bindings import bind_role
from ghaf.access.http_auth import AUTH_ACTION, authenticate
from ghaf.access.tokens import create_token
from ghaf.errors import PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor, Credential
from ghaf.security.rbac import read_action


def _records(platform: Platform, action: str) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        query = select(AuditRecordRow).where(AuditRecordRow.action == action)
        return list(session.execute(query).scalars())


def test_sensitive_reads_are_authorized_and_denials_audited(platform: Platform) -> None:
    bind_role(platform, platform.admin(), "vera", "viewer", project="fraud")
    bind_role(platform, platform.admin(), "otto", "auditor", project="fraud")
    vera = Actor("vera", credential=Credential("token", "v"))
    otto = Actor("otto", credential=Credential("token", "o"))
    action = read_action("dataset", ["public", "pii"])
    assert action == "dataset.read_pii"
    authorize_read(platform, vera, read_action("dataset", ["public"]), "dataset:c:1", "fraud")
    with pytest.raises(PermissionDeniedError):
        authorize_read(platform, vera, action, "dataset:c:1", "fraud")
    with pytest.raises(PermissionDeniedError):
        authorize_read(platform, vera, "audit.read", "audit", "fraud")
    authorize_read(platform, otto, "audit.read", "audit", "fraud", audit_allowed=True)
    assert [r.outcome for r in _records(platform, "dataset.read_pii")] == ["denied"]
    assert [r.outcome for r in _records(platform, "audit.read")] == ["denied", "allowed"]


def test_authenticate_tokens_and_refusals(platform: Platform) -> None:
    bind_role(platform, platform.admin(), "svc", "model_server", project="fraud")
    secret = create_token(platform, platform.admin(), "svc", project="fraud").secret
    actor = authenticate(platform, {"authorization": f"Bearer {secret}"}, source="10.0.0.1:5")
    assert actor.name == "svc" and "fraud:model_server" in actor.roles
    with pytest.raises(PermissionDeniedError, match="no credentials"):
        authenticate(platform, {})
    assert _records(platform, AUTH_ACTION) == []  # a missing credential is not an attempt
    with pytest.raises(PermissionDeniedError, match="only Ghaf API tokens"):
        authenticate(platform, {"Authorization": "Bearer a.b.c"})
    with pytest.raises(PermissionDeniedError):
        authenticate(platform, {"authorization": f"Bearer {secret[:-1]}x"}, source="10.0.0.9:1")
    records = _records(platform, AUTH_ACTION)
    assert [r.outcome for r in records] == ["denied", "denied"]
    assert records[-1].resource.startswith("credential:token:")
    assert secret.rsplit("_", 1)[1] not in records[-1].details
