"""OIDC: verify JWTs against the issuer's JWKS, map claims to roles, log in by client credentials.

Verification follows SECURITY.md: an explicit allow-list of asymmetric algorithms
(never ``none`` or ``HS*``, so RS256→HS256 key confusion cannot happen), issuer,
audience, a small leeway, required claims, keys only from the issuer's JWKS (found
through the discovery document) and a refetch of the JWKS on an unknown ``kid``, at
most once per ``jwks_refresh_min_s``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError

from ghaf.errors import BackendUnavailableError, ConfigError, PermissionDeniedError
from ghaf.settings import IdentitySettings

_TIMEOUT_S = 5.0


def _fetch_json(
    url: str, data: Mapping[str, str] | None = None, *, errors_as_json: bool = False
) -> dict[str, Any]:
    """GET (or form-POST) ``url`` and parse JSON; only http(s) URLs.

    With ``errors_as_json``, an HTTP 400/401 whose body is an OAuth error object is
    returned instead of raised (the device flow polls through such answers).
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"OIDC URL {url!r} is not http(s)", hint="check identity.issuer")
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # noqa: S310  # nosec B310
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        if errors_as_json and exc.code in (400, 401):
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and "error" in answer:
                return answer
        detail = raw.decode(errors="replace")[:200]
        raise PermissionDeniedError(f"{url} answered {exc.code}: {detail}") from exc
    except (OSError, ValueError) as exc:
        raise BackendUnavailableError(
            f"cannot read {url}: {exc}", hint="is the identity provider up?"
        ) from exc
    if not isinstance(payload, dict):
        raise BackendUnavailableError(f"{url} did not answer a JSON object")
    return payload


def discover(issuer: str) -> dict[str, Any]:
    """The issuer's discovery document (``/.well-known/openid-configuration``)."""
    document = _fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != issuer:
        raise ConfigError(
            f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}",
            hint="set identity.issuer to exactly the provider's issuer",
        )
    return document


@dataclass(frozen=True)
class Identity:
    """A verified JWT: who, which groups, and the claims."""

    subject: str
    groups: tuple[str, ...]
    claims: dict[str, Any]

    @property
    def is_service(self) -> bool:
        """A client-credentials token speaks for the client itself."""
        return self.claims.get("client_id") == self.subject


class OidcVerifier:
    """Verifies JWTs from one issuer; keeps its JWKS cached (thread-safe)."""

    def __init__(self, settings: IdentitySettings) -> None:
        if not settings.issuer:
            raise ConfigError(
                "no OIDC issuer is configured", hint="set identity.issuer (GHAF_IDENTITY__ISSUER)"
            )
        self.settings = settings
        self.issuer = settings.issuer
        self._client: PyJWKClient | None = None
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _jwks_client(self) -> PyJWKClient:
        if self._client is None:
            jwks_uri = discover(self.issuer).get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise BackendUnavailableError(f"{self.issuer} publishes no jwks_uri")
            self._client = PyJWKClient(jwks_uri, cache_keys=False, timeout=int(_TIMEOUT_S))
        return self._client

    def _refresh(self) -> None:
        try:
            keys = self._jwks_client().get_signing_keys(refresh=True)
        except PyJWKClientConnectionError as exc:
            raise BackendUnavailableError(f"cannot fetch the JWKS of {self.issuer}") from exc
        except PyJWKClientError as exc:
            raise PermissionDeniedError(f"the JWKS of {self.issuer} is unusable: {exc}") from exc
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._fetched_at = time.monotonic()

    def signing_key(self, kid: str) -> PyJWK:
        """The key ``kid`` from the JWKS, refetched once (rate-limited) when unknown."""
        with self._lock:
            if kid not in self._keys:
                stale = time.monotonic() - self._fetched_at >= self.settings.jwks_refresh_min_s
                if stale:
                    self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise PermissionDeniedError(f"the JWT's key id {kid!r} is not in the issuer's JWKS")
        return key

    def verify(self, token: str) -> Identity:
        """Verify signature, algorithm, issuer, audience, times and required claims.

        Raises:
            PermissionDeniedError: naming why the JWT is refused.
            BackendUnavailableError: the issuer cannot be reached.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise PermissionDeniedError(f"the JWT is malformed: {exc}") from exc
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            raise PermissionDeniedError(
                f"the JWT's algorithm {alg!r} is not allowed",
                hint=f"allowed: {', '.join(self.settings.algorithms)}",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise PermissionDeniedError("the JWT names no key id (kid)")
        key = self.signing_key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.settings.audience,
                issuer=self.issuer,
                leeway=self.settings.leeway_s,
                options={
                    "require": list(self.settings.required_claims),
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "verify_aud": True,
                    "verify_iss": True,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise PermissionDeniedError(f"the JWT is not valid: {exc}") from exc
        subject = claims.get(self.settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise PermissionDeniedError(f"the JWT has no {self.settings.subject_claim!r} claim")
        groups = claims.get(self.settings.groups_claim, [])
        if isinstance(groups, str):
            groups = groups.split()
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise PermissionDeniedError(f"the JWT's {self.settings.groups_claim!r} is not a list")
        return Identity(subject, tuple(groups), claims)


def mapped_roles(settings: IdentitySettings, groups: Iterable[str]) -> frozenset[str]:
    """The ``PROJECT:ROLE`` grants the settings' rule gives these groups."""
    return frozenset(grant for group in groups for grant in settings.role_mapping.get(group, ()))


def client_credentials_token(settings: IdentitySettings, *, scope: str | None = None) -> str:
    """Log in as the configured client (OAuth 2.0 client credentials); returns the access token.

    Raises:
        ConfigError: no issuer, client id or secret configured.
        PermissionDeniedError: the provider refused the client.
    """
    if not (settings.issuer and settings.client_id and settings.client_secret):
        raise ConfigError(
            "client-credentials login needs identity.issuer, client_id and client_secret",
            hint="set GHAF_IDENTITY__ISSUER, __CLIENT_ID and __CLIENT_SECRET",
        )
    endpoint = discover(settings.issuer).get("token_endpoint")
    if not isinstance(endpoint, str):
        raise BackendUnavailableError(f"{settings.issuer} publishes no token_endpoint")
    form = {
        "grant_type": "client_credentials",
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value(),
        "resource": settings.audience,
    }
    if scope:
        form["scope"] = scope
    answer = _fetch_json(endpoint, form)
    token = answer.get("access_token")
    if not isinstance(token, str):
        raise PermissionDeniedError(f"{endpoint} returned no access_token")
    return token


def device_code_token(
    settings: IdentitySettings,
    prompt: Callable[[str, str], None],
    *,
    scope: str = "openid",
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = 600.0,
) -> str:
    """Log in a person with the OAuth 2.0 device authorization grant (RFC 8628).

    Args:
        prompt: called once with (verification URL, user code) to show to the person.

    Raises:
        ConfigError: no issuer or client id, or the provider has no device endpoint.
        PermissionDeniedError: the person refused, or the code expired.
    """
    if not (settings.issuer and settings.client_id):
        raise ConfigError(
            "device login needs identity.issuer and identity.client_id",
            hint="set GHAF_IDENTITY__ISSUER and GHAF_IDENTITY__CLIENT_ID",
        )
    document = discover(settings.issuer)
    endpoint, token_endpoint = (
        document.get("device_authorization_endpoint"),
        document.get("token_endpoint"),
    )
    if not isinstance(endpoint, str) or not isinstance(token_endpoint, str):
        raise ConfigError(f"{settings.issuer} does not offer the device authorization grant")
    start = _fetch_json(
        endpoint, {"client_id": settings.client_id, "scope": scope, "resource": settings.audience}
    )
    url = str(start.get("verification_uri_complete") or start.get("verification_uri"))
    prompt(url, str(start.get("user_code", "")))
    interval = float(start.get("interval", 5))
    deadline = time.monotonic() + min(float(start.get("expires_in", timeout_s)), timeout_s)
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": str(start.get("device_code", "")),
        "client_id": settings.client_id,
    }
    while time.monotonic() < deadline:
        sleep(interval)
        answer = _fetch_json(token_endpoint, form, errors_as_json=True)
        error = answer.get("error")
        if error is None and isinstance(answer.get("access_token"), str):
            return str(answer["access_token"])
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise PermissionDeniedError(f"device login failed: {error}")
    raise PermissionDeniedError("device login timed out", hint="run ghaf login --device again")
