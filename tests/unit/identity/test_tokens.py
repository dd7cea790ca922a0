"""API tokens: shown once, stored hashed, scoped, revocation and expiry effective at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from ghaf.access.bindings import bind_role, unbind_role
from ghaf.access.tokens import create_token, list_tokens, revoke_token, verify_token
from ghaf.errors import InvalidInputError, PermissionDeniedError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity_tables import ApiTokenRow


def _bound(platform: Platform, *roles: str) -> None:
    for role in roles:
        bind_role(platform, platform.admin(), "alice", role, project="fraud")


def test_token_is_stored_only_as_a_hash(platform: Platform) -> None:
    _bound(platform, "data_scientist")
    new = create_token(platform, platform.admin(), "alice", project="fraud")
    secret = new.secret.rsplit("_", 1)[1]
    with platform.engine.connect() as conn:
        dump = "\n".join(str(row) for row in conn.execute(text("SELECT * FROM identity_tokens")))
        audit = "\n".join(str(row) for row in conn.execute(text("SELECT * FROM audit_records")))
    assert new.info.token_id in dump
    assert secret not in dump and new.secret not in dump
    assert secret not in audit
    assert len(list_tokens(platform, principal="alice")) == 1


def test_token_carries_its_roles_in_its_project_only(platform: Platform) -> None:
    _bound(platform, "data_scientist", "viewer")
    new = create_token(platform, platform.admin(), "alice", project="fraud", roles=("viewer",))
    actor = verify_token(platform, new.secret)
    authz = platform.spine.authorizer
    authz.authorize(actor, "model.read", "model:m", "fraud")
    with pytest.raises(PermissionDeniedError):
        authz.authorize(actor, "model.register", "model:m", "fraud")  # not carried
    with pytest.raises(PermissionDeniedError):
        authz.authorize(actor, "model.read", "model:m", "other")  # other project


def test_revoked_and_expired_tokens_stop_working_at_once(platform: Platform) -> None:
    _bound(platform, "viewer")
    new = create_token(platform, platform.admin(), "alice", project="fraud")
    assert verify_token(platform, new.secret).name == "alice"
    revoke_token(platform, platform.admin(), new.info.token_id, project="fraud")
    with pytest.raises(PermissionDeniedError, match="revoked"):
        verify_token(platform, new.secret)

    short = create_token(platform, platform.admin(), "alice", project="fraud")
    # Age it in the database (the test reads and writes the store directly).
    with platform.spine.operation(platform.admin(), "token.test_age", "token", "fraud") as op:
        row = op.session.execute(
            select(ApiTokenRow).where(ApiTokenRow.token_id == short.info.token_id)
        ).scalar_one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(PermissionDeniedError, match="expired"):
        verify_token(platform, short.secret)


def test_unbinding_a_role_removes_it_from_existing_tokens(platform: Platform) -> None:
    _bound(platform, "data_scientist")
    new = create_token(platform, platform.admin(), "alice", project="fraud")
    actor = verify_token(platform, new.secret)
    platform.spine.authorizer.authorize(actor, "run.create", "run:x", "fraud")
    unbind_role(platform, platform.admin(), "alice", "data_scientist", project="fraud")
    actor = verify_token(platform, new.secret)
    with pytest.raises(PermissionDeniedError):
        platform.spine.authorizer.authorize(actor, "run.create", "run:x", "fraud")


def test_wrong_secret_malformed_and_unknown_are_refused(platform: Platform) -> None:
    _bound(platform, "viewer")
    new = create_token(platform, platform.admin(), "alice", project="fraud")
    forged = new.secret[:-4] + ("AAAA" if not new.secret.endswith("AAAA") else "BBBB")
    for bad in (forged, "ghaf_nope", "ghaf_" + "0" * 16 + "_" + "A" * 43, ""):
        with pytest.raises(PermissionDeniedError):
            verify_token(platform, bad)


def test_token_cannot_carry_roles_the_principal_lacks(platform: Platform) -> None:
    _bound(platform, "viewer")
    with pytest.raises(PermissionDeniedError, match="release_manager"):
        create_token(
            platform, platform.admin(), "alice", project="fraud", roles=("release_manager",)
        )
    with pytest.raises(InvalidInputError, match="root"):
        create_token(platform, platform.admin(), "alice", project="fraud", roles=("root",))
    with pytest.raises(InvalidInputError, match="expiry"):
        create_token(platform, platform.admin(), "alice", project="fraud", ttl=timedelta(0))
    with pytest.raises(InvalidInputError, match="no role"):
        create_token(platform, platform.admin(), "bob", project="fraud")
    assert list_tokens(platform) == []
    with platform.read_session() as session:
        failed = session.execute(
            select(AuditRecordRow).where(AuditRecordRow.action == "token.create")
        ).scalars()
        # a role the principal lacks is a refusal (denied); bad input is a failure
        assert sorted(row.outcome for row in failed) == ["denied", "failed", "failed", "failed"]


def test_admin_token_is_scoped_not_all_powerful(platform: Platform) -> None:
    new = create_token(
        platform, platform.admin(), platform.admin().name, project="fraud", roles=("viewer",)
    )
    actor = verify_token(platform, new.secret)
    with pytest.raises(PermissionDeniedError):
        platform.spine.authorizer.authorize(actor, "project.create", "project:x", "fraud")
