"""OidcVerifier against a local JWKS server: key rotation is picked up on an unknown kid."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ghaf.errors import ConfigError, PermissionDeniedError
from ghaf.security.oidc import OidcVerifier, device_code_token, mapped_roles
from ghaf.settings import IdentitySettings, load_settings
from tests.unit.identity.fake_idp import Idp, running_idp


@pytest.fixture
def idp() -> Iterator[Idp]:
    with running_idp() as server:
        yield server


def _token(idp: Idp, key: Any, kid: str, alg: str = "RS256") -> str:
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": "ghaf", "sub": "u1", "iat": now, "exp": now + 60}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def test_unknown_kid_refreshes_the_jwks_once(idp: Idp) -> None:
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    idp.publish(first, "k1", RSAAlgorithm)
    verifier = OidcVerifier(IdentitySettings(issuer=idp.issuer, jwks_refresh_min_s=0))
    assert verifier.verify(_token(idp, first, "k1")).subject == "u1"
    hits = idp.jwks_hits
    assert verifier.verify(_token(idp, first, "k1")).subject == "u1"
    assert idp.jwks_hits == hits  # cached

    second = ec.generate_private_key(ec.SECP256R1())  # the provider rotates in a new key
    idp.publish(second, "k2", ECAlgorithm)
    assert verifier.verify(_token(idp, second, "k2", "ES256")).subject == "u1"
    assert idp.jwks_hits == hits + 1


def test_unknown_kid_refetches_are_rate_limited(idp: Idp) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    idp.publish(key, "k1", RSAAlgorithm)
    verifier = OidcVerifier(IdentitySettings(issuer=idp.issuer, jwks_refresh_min_s=60))
    verifier.verify(_token(idp, key, "k1"))
    hits = idp.jwks_hits
    for _ in range(5):
        with pytest.raises(PermissionDeniedError, match="not in the issuer's JWKS"):
            verifier.verify(_token(idp, key, "nope"))
    assert idp.jwks_hits == hits


def test_settings_refuse_symmetric_and_none_algorithms() -> None:
    for algorithms in (["HS256"], ["none"], ["RS256", "hs512"], []):
        with pytest.raises(ConfigError, match="asymmetric"):
            load_settings(identity={"algorithms": algorithms})


def test_no_issuer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="issuer"):
        OidcVerifier(IdentitySettings())


def test_groups_map_to_roles_by_the_settings_rule() -> None:
    settings = IdentitySettings(
        role_mapping={"ml-approvers": ["fraud:model_approver"], "sre": ["*:sre"]}
    )
    assert mapped_roles(settings, ["ml-approvers", "sre", "other"]) == {
        "fraud:model_approver",
        "*:sre",
    }


def test_device_code_login_polls_until_approved(idp: Idp) -> None:
    idp.polls = ["authorization_pending", "slow_down", "authorization_pending", "token:at-1"]
    shown: list[tuple[str, str]] = []
    waits: list[float] = []
    settings = IdentitySettings(issuer=idp.issuer, client_id="cli")
    token = device_code_token(
        settings, lambda url, code: shown.append((url, code)), sleep=waits.append
    )
    assert token == "at-1"
    assert shown == [(idp.issuer + "/device", "ABCD-EFGH")]
    assert waits == [1, 1, 6, 6]  # slow_down adds 5 seconds to the interval


@pytest.mark.parametrize("error", ["access_denied", "expired_token"])
def test_device_code_login_refusals(idp: Idp, error: str) -> None:
    idp.polls = ["authorization_pending", error]
    settings = IdentitySettings(issuer=idp.issuer, client_id="cli")
    with pytest.raises(PermissionDeniedError, match=error):
        device_code_token(settings, lambda url, code: None, sleep=lambda s: None)
