"""Authentication for every Ghaf HTTP server: ``Authorization: Bearer`` → an :class:`Actor`.

The credential is either a Ghaf API token (``ghaf_...``) or an OIDC JWT. Every refusal
of a presented credential is audited (action ``auth.authenticate``, outcome ``denied``)
and answered 401. Use :class:`BearerAuthMiddleware` in a Starlette/ASGI app and read the
actor with :func:`request_actor`, or call :func:`authenticate` yourself.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

import orjson

from ghaf.access.authorize import audit_denied
from ghaf.access.tokens import looks_like_token, verify_token
from ghaf.errors import BackendUnavailableError, PermissionDeniedError
from ghaf.security.identity import Actor, Credential
from ghaf.security.oidc import OidcVerifier, mapped_roles
from ghaf.security.rbac import CREDENTIAL_MARKER, bound_roles

if TYPE_CHECKING:
    # Only the middleware needs Starlette, and it runs inside a server that has it:
    # authenticate() serves the CLI of a core install too (ghaf[serve] not required).
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ghaf.platform import Platform

AUTH_ACTION = "auth.authenticate"
ANONYMOUS = "anonymous"
_verifiers: dict[str, OidcVerifier] = {}
_verifiers_lock = threading.Lock()


def _verifier(platform: Platform) -> OidcVerifier:
    settings = platform.settings.identity
    key = settings.model_dump_json()
    with _verifiers_lock:
        if key not in _verifiers:
            _verifiers[key] = OidcVerifier(settings)
        return _verifiers[key]


def _bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization") or headers.get("Authorization")
    if not value:
        raise PermissionDeniedError(
            "no credentials: send Authorization: Bearer TOKEN",
            hint="create one with `ghaf tokens create` or log in with your identity provider",
        )
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise PermissionDeniedError("the Authorization header is not 'Bearer TOKEN'")
    return credential.strip()


def _from_jwt(platform: Platform, token: str, source: str | None) -> Actor:
    if not platform.settings.identity.issuer:
        raise PermissionDeniedError(
            "this server accepts only Ghaf API tokens (no OIDC issuer is configured)"
        )
    identity = _verifier(platform).verify(token)
    grants = mapped_roles(platform.settings.identity, identity.groups)
    with platform.read_session() as session:
        grants |= bound_roles(session, identity.subject, identity.groups)
    return Actor(
        identity.subject,
        kind="service" if identity.is_service else "user",
        roles=frozenset({CREDENTIAL_MARKER, "@oidc", *grants}),
        source=source,
        credential=Credential("oidc", platform.settings.identity.issuer),
    )


def _claimed(token: str) -> str:
    """What an unverified credential says it is, for the audit record only."""
    if looks_like_token(token):
        return "token:" + token.split("_")[1][:16] if token.count("_") >= 2 else "token:?"
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        sub = claims.get("sub") if isinstance(claims, dict) else None
    except (IndexError, ValueError):
        return "jwt:malformed"
    return f"jwt:{str(sub)[:64]} (unverified)"


def authenticate(
    platform: Platform, headers: Mapping[str, str], *, source: str | None = None
) -> Actor:
    """The actor behind a request's bearer credential.

    Raises:
        PermissionDeniedError: missing or refused credential (HTTP 401); refusals of a
            presented credential are audited first.
        BackendUnavailableError: the identity provider cannot be reached (HTTP 503).
    """
    token = _bearer(headers)
    try:
        if looks_like_token(token):
            return verify_token(platform, token, source=source)
        return _from_jwt(platform, token, source)
    except PermissionDeniedError as exc:
        actor = Actor(ANONYMOUS, source=source)
        resource = f"credential:{_claimed(token)}"
        audit_denied(platform, actor, AUTH_ACTION, resource, platform.default_project, exc.headline)
        raise


def request_actor(request: Request) -> Actor:
    """The actor :class:`BearerAuthMiddleware` authenticated for this request."""
    actor = request.scope.get("state", {}).get("actor")
    if not isinstance(actor, Actor):
        raise PermissionDeniedError("the request was not authenticated")
    return actor


class BearerAuthMiddleware:
    """ASGI middleware: authenticate every request but ``public_paths``; 401 on refusal.

    The actor is put in ``scope["state"]["actor"]`` (``request.state.actor``).
    """

    def __init__(
        self, app: ASGIApp, platform: Platform, *, public_paths: Collection[str] = ()
    ) -> None:
        self.app = app
        self.platform = platform
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        import anyio.to_thread
        from starlette.datastructures import Headers

        client = scope.get("client")
        source = f"{client[0]}:{client[1]}" if client else None
        headers = Headers(scope=scope)
        try:
            actor = await anyio.to_thread.run_sync(
                lambda: authenticate(self.platform, headers, source=source)
            )
        except PermissionDeniedError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": exc.headline})
                return
            await _error(send, 401, exc.headline, challenge=True)
            return
        except BackendUnavailableError as exc:
            await _error(send, 503, exc.headline)
            return
        scope.setdefault("state", {})["actor"] = actor
        await self.app(scope, receive, send)


async def _error(send: Send, status: int, message: str, *, challenge: bool = False) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if challenge:
        headers.append((b"www-authenticate", b'Bearer error="invalid_token"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
