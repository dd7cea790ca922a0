"""Browser sessions of the web UI: sealed cookies, CSRF tokens and one-time owner login links.

A session is proven once (an OIDC sign-in verified by :mod:`ghaf.security.oidc_code`, or
a one-time link that the home's owner minted from its OS account) and then carried in a
cookie that the server seals with AES-256-GCM under a key only it reads (``<home>/
ui-session.key``, 0600): the browser cannot read, forge or extend it, and every worker of
a server reads the same cookie without a table to share. It expires after
:data:`SESSION_TTL`; roles are not in it: each request re-reads the bindings (and maps
the groups the provider asserted at sign-in), so an unbound role stops working at once.
Each session holds a CSRF token that a request authenticated by the cookie must echo in
``X-CSRF-Token`` to change anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update

from ghaf.access.tables import LoginLinkRow
from ghaf.errors import PermissionDeniedError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor, Credential
from ghaf.security.oidc import mapped_roles
from ghaf.security.rbac import CREDENTIAL_MARKER, bound_roles
from ghaf.settings import GhafSettings
from ghaf.spine import current_operation, current_session, governed

SESSION_TTL = timedelta(hours=8)
LINK_TTL = timedelta(minutes=2)
COOKIE = "ghaf_session"
COOKIE_TLS = "__Host-ghaf_session"
"""Over TLS the cookie is ``__Host-`` prefixed: Secure, Path=/, no Domain (RFC 6265bis)."""
CSRF_HEADER = "x-csrf-token"
SessionKind = Literal["oidc", "owner"]
LINK_ACTION = "home.login_link"
OPEN_ACTION = "home.login_link_open"

_keys: dict[Path, bytes] = {}
_keys_lock = threading.Lock()


@dataclass(frozen=True)
class WebSession:
    """Who a browser proved to be, until when, and its CSRF token."""

    principal: str
    kind: SessionKind
    credential: str
    """The OIDC issuer, or the owner's OS account and the link it opened."""
    groups: tuple[str, ...]
    csrf: str
    expires: float
    sid: str

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.principal,
            "k": self.kind,
            "c": self.credential,
            "g": list(self.groups),
            "x": self.csrf,
            "e": self.expires,
            "s": self.sid,
        }


def new_session(
    principal: str, kind: SessionKind, credential: str, groups: tuple[str, ...] = ()
) -> WebSession:
    """A fresh session (new id and CSRF token) valid for :data:`SESSION_TTL`."""
    return WebSession(
        principal,
        kind,
        credential,
        groups,
        csrf=secrets.token_urlsafe(32),
        expires=time.time() + SESSION_TTL.total_seconds(),
        sid=secrets.token_hex(16),
    )


def key_path(settings: GhafSettings) -> Path:
    return settings.home / "ui-session.key"


def _key(settings: GhafSettings) -> bytes:
    """The server's cookie key, made (0600, exclusively) the first time any worker asks."""
    path = key_path(settings)
    with _keys_lock:
        if path in _keys:
            return _keys[path]
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = b""
            for _ in range(100):  # another worker made it a moment ago: wait for its bytes
                key = path.read_bytes()
                if len(key) == 32:
                    break
                time.sleep(0.01)
        else:
            key = secrets.token_bytes(32)
            with os.fdopen(fd, "wb") as out:
                out.write(key)
        if len(key) != 32:
            raise PermissionDeniedError(
                f"{path} is not a 32-byte key", hint="delete it: every browser signs in again"
            )
        _keys[path] = key
        return key


def seal(settings: GhafSettings, payload: dict[str, Any], purpose: str) -> str:
    """``payload`` encrypted and authenticated for ``purpose`` (the associated data)."""
    nonce = secrets.token_bytes(12)
    box = AESGCM(_key(settings)).encrypt(nonce, orjson.dumps(payload), purpose.encode())
    return base64.urlsafe_b64encode(nonce + box).rstrip(b"=").decode("ascii")


def unseal(settings: GhafSettings, text: str, purpose: str) -> dict[str, Any] | None:
    """What :func:`seal` sealed, or None for anything forged, altered or for another purpose."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plain = AESGCM(_key(settings)).decrypt(raw[:12], raw[12:], purpose.encode())
        payload = orjson.loads(plain)
    except (ValueError, InvalidTag, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def encode_session(settings: GhafSettings, session: WebSession) -> str:
    return seal(settings, session.to_json(), "ghaf-ui-session/1")


def decode_session(settings: GhafSettings, cookie: str) -> WebSession | None:
    """The session in ``cookie``; None when it is forged, altered or expired."""
    data = unseal(settings, cookie, "ghaf-ui-session/1")
    if data is None:
        return None
    try:
        session = WebSession(
            str(data["p"]),
            "owner" if data["k"] == "owner" else "oidc",
            str(data["c"]),
            tuple(str(g) for g in data["g"]),
            str(data["x"]),
            float(data["e"]),
            str(data["s"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return session if session.expires > time.time() else None


def session_cookie(cookies: dict[str, str], settings: GhafSettings) -> WebSession | None:
    """The session of a request's cookies (either name), if any is valid."""
    for name in (COOKIE_TLS, COOKIE):
        value = cookies.get(name)
        if value:
            found = decode_session(settings, value)
            if found is not None:
                return found
    return None


def csrf_matches(session: WebSession, presented: str | None) -> bool:
    """Whether ``presented`` is this session's CSRF token (compared in constant time)."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())


def actor_of(platform: Platform, session: WebSession, source: str | None) -> Actor:
    """The actor a session proves, with its roles read now.

    Raises:
        PermissionDeniedError: an OIDC session of an issuer the home no longer trusts, or
            an owner session of a home that changed hands.
    """
    if session.kind == "owner":
        if platform.home_owner() != session.principal:
            raise PermissionDeniedError(
                f"{session.principal} no longer owns this home", hint="sign in again"
            )
        credential = Credential("home-owner", session.credential)
        return Actor(session.principal, credential=credential, source=source)
    identity = platform.settings.identity
    if identity.issuer != session.credential:
        raise PermissionDeniedError(
            "the session's identity provider is no longer this server's", hint="sign in again"
        )
    grants = mapped_roles(identity, session.groups)
    with platform.read_session() as db:
        grants |= bound_roles(db, session.principal, session.groups)
    return Actor(
        session.principal,
        kind="user",
        roles=frozenset({CREDENTIAL_MARKER, "@oidc", *grants}),
        source=source,
        credential=Credential("oidc", session.credential),
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class LoginLink:
    """A minted link: ``secret`` goes into the URL once and is never stored."""

    link_id: str
    secret: str
    expires_in_s: int

    @property
    def path(self) -> str:
        return f"/ui/login/link/{self.link_id}.{self.secret}"


@governed(LINK_ACTION, resource="principal:{actor.name}")
def create_login_link(platform: Platform, actor: Actor) -> LoginLink:
    """A one-time link (valid :data:`LINK_TTL`) that signs a browser in as the home's
    owner. Only the owner, proven by its OS account, may mint one (``home.*``)."""
    credential = actor.credential.id if actor.credential is not None else "?"
    link_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    now = utcnow()
    current_session().add(
        LoginLinkRow(
            link_id=link_id,
            secret_sha256=_hash(secret),
            principal=actor.name,
            credential=credential[:128],
            created_at=now,
            expires_at=now + LINK_TTL,
        )
    )
    current_operation().details.update({"link_id": link_id, "expires_in_s": 120})
    return LoginLink(link_id, secret, int(LINK_TTL.total_seconds()))


def login_link_actor(platform: Platform, token: str, source: str | None) -> Actor:
    """The owner a link would sign in (it is not burnt yet: :func:`open_login_link` does).

    Raises:
        PermissionDeniedError: no such link (audited as a refused authentication).
    """
    link_id, _, secret = token.partition(".")
    with platform.read_session() as db:
        row = db.execute(
            select(LoginLinkRow).where(LoginLinkRow.link_id == link_id)
        ).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.secret_sha256, _hash(secret)):
        headline = "this login link is not one the home's owner minted"
        platform.spine.record_denied(
            Actor("anonymous", source=source),
            "auth.authenticate",
            f"login_link:{link_id[:32] or '?'}",
            platform.default_project,
            headline,
        )
        raise PermissionDeniedError(headline, hint="run `ghaf ui login-link` for a new one")
    credential = Credential("home-owner", f"{row.credential} ui-link:{row.link_id}")
    return Actor(row.principal, credential=credential, source=source)


@governed(OPEN_ACTION, resource="login_link:{link_id}")
def open_login_link(platform: Platform, actor: Actor, link_id: str) -> WebSession:
    """Burn the link and start the owner's session; a used or expired link is refused.

    Raises:
        PermissionDeniedError: the link was used already or has expired (audited).
    """
    now = utcnow()
    burnt = current_session().execute(
        update(LoginLinkRow)
        .where(
            LoginLinkRow.link_id == link_id,
            LoginLinkRow.principal == actor.name,
            LoginLinkRow.used_at.is_(None),
            LoginLinkRow.expires_at > now,
        )
        .values(used_at=now, used_from=actor.source)
    )
    if getattr(burnt, "rowcount", 0) != 1:
        raise PermissionDeniedError(
            "this login link was used already or has expired (links open once, within 2 minutes)",
            hint="run `ghaf ui login-link` for a new one",
        )
    credential = actor.credential.id if actor.credential is not None else "?"
    session = new_session(actor.name, "owner", credential)
    current_operation().details["session"] = session.sid
    return session
