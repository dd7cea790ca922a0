"""API tokens: random, shown once, stored as a SHA-256 hash, scoped to a project, roles, expiry.

A token reads ``ghaf_<id>_<secret>``: the id is public (it names the token in lists and
audit records), the secret is 256 random bits of which only the hash is stored. A
token's grants are its roles that its principal still holds, resolved at every request,
so revoking the token, unbinding a role or letting it expire takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ghaf.access.bindings import check_principal_name, check_project
from ghaf.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor, Credential
from ghaf.security.identity_tables import ApiTokenRow, PrincipalRow
from ghaf.security.rbac import CREDENTIAL_MARKER, Policy, bound_roles, grants_in
from ghaf.spine import current_operation, current_session, governed

PREFIX = "ghaf_"
MAX_TTL = timedelta(days=366)
_TOKEN = re.compile(r"^ghaf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token after it was created (never its secret)."""

    token_id: str
    principal: str
    project: str
    roles: tuple[str, ...]
    description: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > utcnow()


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: ``secret`` is the whole token, shown once and never again."""

    info: TokenInfo
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@governed("token.create", resource="token:{principal}", project="{project}")
def create_token(
    platform: Platform,
    actor: Actor,
    principal: str,
    *,
    project: str,
    roles: tuple[str, ...] = (),
    ttl: timedelta = timedelta(days=30),
    description: str = "",
) -> NewToken:
    """Create a token for ``principal`` in ``project`` with a subset of its roles there.

    Args:
        roles: the roles the token carries; default: every role the principal holds there.
        ttl: how long it is valid (at most a year).

    Raises:
        InvalidInputError: bad expiry, an unknown role, or no roles to carry.
        PermissionDeniedError: the principal does not hold a requested role.
    """
    check_principal_name(principal)
    check_project(project)
    if not timedelta(0) < ttl <= MAX_TTL:
        raise InvalidInputError(
            f"token expiry {ttl} is out of range", hint="give between 1 second and 366 days"
        )
    policy = Policy.default()
    for role in roles:
        policy.check_role(role)
    session = current_session()
    held = grants_in(bound_roles(session, principal), project).allow
    chosen = tuple(sorted(set(roles) if roles else held))
    missing = sorted(set(chosen) - held)
    if missing:
        raise PermissionDeniedError(
            f"{principal} does not hold role {missing[0]} in project {project!r}",
            hint=f"bind it first (ghaf roles bind {principal} {missing[0]} --project {project})",
        )
    if not chosen:
        raise InvalidInputError(
            f"{principal} holds no role in project {project!r} for the token to carry",
            hint=f"ghaf roles bind {principal} ROLE --project {project}",
        )
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiTokenRow(
        token_id=token_id,
        secret_sha256=_hash(secret),
        principal=principal,
        project=project,
        roles=json.dumps(chosen),
        description=description,
        created_by=actor.name,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    current_operation().details.update({"token_id": token_id, "roles": list(chosen)})
    return NewToken(_to_info(row), f"{PREFIX}{token_id}_{secret}")


@governed("token.revoke", resource="token:{token_id}", project="{project}")
def revoke_token(platform: Platform, actor: Actor, token_id: str, *, project: str) -> TokenInfo:
    """Revoke a token; the next request carrying it is refused.

    Raises:
        NotFoundError: no such token in ``project``.
    """
    session = current_session()
    row = session.execute(
        select(ApiTokenRow).where(ApiTokenRow.token_id == token_id, ApiTokenRow.project == project)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            f"token {token_id!r} does not exist in project {project!r}", hint="ghaf tokens list"
        )
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return _to_info(row)


def get_token(platform: Platform, token_id: str) -> TokenInfo:
    """The token called ``token_id``.

    Raises:
        NotFoundError: no such token.
    """
    with platform.read_session() as session:
        row = session.execute(
            select(ApiTokenRow).where(ApiTokenRow.token_id == token_id)
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"token {token_id!r} does not exist", hint="ghaf tokens list")
        return _to_info(row)


def list_tokens(
    platform: Platform, *, principal: str | None = None, project: str | None = None
) -> list[TokenInfo]:
    """Tokens (active, expired and revoked), newest first; never their secrets."""
    query = select(ApiTokenRow).order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id.desc())
    if principal is not None:
        query = query.where(ApiTokenRow.principal == principal)
    if project is not None:
        query = query.where(ApiTokenRow.project == project)
    with platform.read_session() as session:
        return [_to_info(row) for row in session.execute(query).scalars()]


def looks_like_token(value: str) -> bool:
    """Whether a bearer credential is a Ghaf API token (not a JWT)."""
    return value.startswith(PREFIX)


def verify_token(platform: Platform, token: str, *, source: str | None = None) -> Actor:
    """The actor a token speaks for, with the grants it carries now.

    Raises:
        PermissionDeniedError: malformed, unknown, wrong secret, revoked or expired.
    """
    match = _TOKEN.match(token)
    if match is None:
        raise PermissionDeniedError("the API token is malformed", hint="ghaf tokens create")
    token_id, secret = match.groups()
    with platform.read_session() as session:
        row = session.execute(
            select(ApiTokenRow).where(ApiTokenRow.token_id == token_id)
        ).scalar_one_or_none()
        if row is None or not hmac.compare_digest(row.secret_sha256, _hash(secret)):
            raise PermissionDeniedError("the API token is not valid", hint="ghaf tokens create")
        if row.revoked_at is not None:
            raise PermissionDeniedError(f"API token {token_id} was revoked")
        if row.expires_at <= utcnow():
            raise PermissionDeniedError(f"API token {token_id} has expired")
        now_held = grants_in(bound_roles(session, row.principal), row.project)
        allowed, denied = now_held.allow, now_held.deny
        kind = session.execute(
            select(PrincipalRow.kind).where(PrincipalRow.name == row.principal)
        ).scalar_one_or_none()
    carried = frozenset(json.loads(row.roles))
    grants = {f"{row.project}:{r}" for r in carried & allowed}
    grants |= {f"!{row.project}:{r}" for r in denied}
    return Actor(
        row.principal,
        kind="service" if kind == "service" else "user",
        roles=frozenset({CREDENTIAL_MARKER, f"@token:{token_id}", *grants}),
        source=source,
        credential=Credential("token", token_id, minted_by=row.created_by),
    )


def _to_info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(
        token_id=row.token_id,
        principal=row.principal,
        project=row.project,
        roles=tuple(json.loads(row.roles)),
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
