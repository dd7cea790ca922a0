"""OIDC authorization code + PKCE (S256) for people signing in through a browser.

The relying party's half of RFC 6749 §4.1 with RFC 7636 (PKCE) and OIDC Core's ``nonce``:
:func:`begin` makes the secrets a login holds (state, nonce, code verifier) and the
authorization URL; :func:`finish` exchanges the code at the token endpoint and verifies
both tokens with :class:`~ghaf.security.oidc.OidcVerifier` (the issuer's JWKS, algorithm
allow-list, issuer, audience, times): the ID token for this client and this login's
nonce, the access token for Ghaf's audience, which names the subject and the groups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass

from ghaf.errors import BackendUnavailableError, ConfigError, PermissionDeniedError
from ghaf.security.oidc import Identity, OidcVerifier, _fetch_json, discover
from ghaf.settings import IdentitySettings

SCOPE = "openid groups"


@dataclass(frozen=True)
class PendingLogin:
    """What one browser login keeps between the redirect out and the callback."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str


def challenge_of(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _needs(settings: IdentitySettings) -> tuple[str, str]:
    if not (settings.issuer and settings.client_id):
        raise ConfigError(
            "browser sign-in needs identity.issuer and identity.client_id",
            hint="set GHAF_IDENTITY__ISSUER and GHAF_IDENTITY__CLIENT_ID, or open the UI "
            "with a link from `ghaf ui login-link`",
        )
    return settings.issuer, settings.client_id


def begin(settings: IdentitySettings, redirect_uri: str) -> tuple[PendingLogin, str]:
    """A new login's secrets and the provider URL to send the browser to.

    Raises:
        ConfigError: no issuer or client id is configured.
        BackendUnavailableError: the provider's discovery document cannot be read.
    """
    issuer, client_id = _needs(settings)
    endpoint = discover(issuer).get("authorization_endpoint")
    if not isinstance(endpoint, str):
        raise BackendUnavailableError(f"{issuer} publishes no authorization_endpoint")
    pending = PendingLogin(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(64),
        redirect_uri=redirect_uri,
    )
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": challenge_of(pending.verifier),
        "code_challenge_method": "S256",
        "resource": settings.audience,
    }
    return pending, f"{endpoint}?{urllib.parse.urlencode(query)}"


def finish(settings: IdentitySettings, pending: PendingLogin, *, code: str, state: str) -> Identity:
    """Exchange ``code`` and verify what comes back; the identity the access token proves.

    Raises:
        PermissionDeniedError: the state does not match this login, the provider refused
            the code, or a token fails verification (naming why).
        BackendUnavailableError: the provider cannot be reached.
    """
    issuer, client_id = _needs(settings)
    if not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise PermissionDeniedError(
            "the sign-in's state does not match this browser's login",
            hint="start again from the sign-in page (a link from elsewhere is refused)",
        )
    endpoint = discover(issuer).get("token_endpoint")
    if not isinstance(endpoint, str):
        raise BackendUnavailableError(f"{issuer} publishes no token_endpoint")
    answer = _fetch_json(
        endpoint,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "client_id": client_id,
            "code_verifier": pending.verifier,
            "resource": settings.audience,
        },
    )
    id_token, access_token = answer.get("id_token"), answer.get("access_token")
    if not isinstance(id_token, str) or not isinstance(access_token, str):
        raise PermissionDeniedError(f"{endpoint} returned no id_token and access_token")
    # The ID token is for this client (aud = client_id) and this login (nonce).
    id_settings = settings.model_copy(update={"audience": client_id})
    person = OidcVerifier(id_settings).verify(id_token)
    nonce = str(person.claims.get("nonce", ""))
    if not hmac.compare_digest(nonce.encode(), pending.nonce.encode()):
        raise PermissionDeniedError("the ID token's nonce is not this login's")
    identity = OidcVerifier(settings).verify(access_token)
    if identity.subject != person.subject:
        raise PermissionDeniedError(
            f"the access token's subject {identity.subject!r} is not the ID token's"
        )
    if identity.is_service:
        raise PermissionDeniedError("a client's own token cannot sign a person in")
    return identity
