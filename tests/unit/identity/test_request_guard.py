"""The servers' RequestGuard: what it caches (briefly) and what it never does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ghaf.access.guard import RequestGuard
from ghaf.access.tokens import revoke_token
from ghaf.errors import PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _headers(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"x"), (b"authorization", f"Bearer {token}".encode())]


def _records(platform: Platform, outcome: str, action: str) -> int:
    query = select(AuditRecordRow.seq).where(
        AuditRecordRow.outcome == outcome, AuditRecordRow.action == action
    )
    with platform.read_session() as session:
        return len(session.execute(query).all())


def test_a_revoked_token_stops_working_once_the_ttl_passes(platform: Platform) -> None:
    clock = Clock()
    guard = RequestGuard(platform, ttl=5.0, clock=clock)
    project = platform.default_project
    token = mint(platform, "svc-scorer", ["model_server"], kind="service")
    key, actor = guard.authenticate(_headers(token))
    guard.authorize(key, actor, "model.predict", "model:fraud:1", project)
    assert guard.is_allowed(key, "model.predict", project)
    revoke_token(platform, platform.admin(), token.split("_")[1], project=project)
    clock.now = 4.9  # within the TTL the proven credential and its decision are reused
    assert guard.authenticate(_headers(token))[1].name == "svc-scorer"
    assert guard.is_allowed(key, "model.predict", project)
    clock.now = 5.1
    assert not guard.is_allowed(key, "model.predict", project)
    with pytest.raises(PermissionDeniedError, match="revoked"):
        guard.authenticate(_headers(token))


def test_no_credential_is_refused_and_the_cache_holds_no_secret(platform: Platform) -> None:
    guard = RequestGuard(platform)
    with pytest.raises(PermissionDeniedError, match="no credentials"):
        guard.authenticate([(b"host", b"x")])
    token = mint(platform, "svc-scorer", ["model_server"], kind="service")
    key, _ = guard.authenticate(_headers(token))
    assert token not in key and len(key) == 64  # a SHA-256 of the header, never the token


def test_refusals_are_never_cached_and_pii_reads_always_audited(platform: Platform) -> None:
    guard = RequestGuard(platform, ttl=60.0)
    project = platform.default_project
    viewer = mint(platform, "vera", ["viewer"])
    key, actor = guard.authenticate(_headers(viewer))
    for _ in range(2):
        with pytest.raises(PermissionDeniedError, match=r"model\.predict"):
            guard.authorize(key, actor, "model.predict", "model:fraud:1", project)
    assert _records(platform, "denied", "model.predict") == 2
    engineer = mint(platform, "dana", ["data_engineer"])
    key, actor = guard.authenticate(_headers(engineer))
    for _ in range(3):
        guard.authorize(
            key, actor, "features.read_pii", "feature_view:v", project, audit_allowed=True
        )
    assert _records(platform, "allowed", "features.read_pii") == 3
