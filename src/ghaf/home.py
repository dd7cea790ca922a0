"""The platform home: ``ghaf init`` creates it, ``ghaf doctor`` checks it."""

from __future__ import annotations

import functools
import pwd
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from ghaf.artifacts.leftovers import find_leftovers, format_size
from ghaf.errors import ConfigError, GhafError, InvalidInputError
from ghaf.metadata.base import utcnow
from ghaf.metadata.migrate import pending_heads, upgrade
from ghaf.metadata.platform_tables import HomeInfo
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.security.identity_tables import RoleBindingRow
from ghaf.security.rbac import ALL_PROJECTS, OWNER_ROLES, RbacAuthorizer
from ghaf.settings import GhafSettings
from ghaf.spine import current_operation, current_session, governed


def _init_keys(platform: Platform) -> None:
    from ghaf.backends import open_key_provider
    from ghaf.security.homekeys import init_keys

    init_keys(platform.settings, open_key_provider(platform.settings))


def _first_checkpoint(platform: Platform) -> None:
    """Sign a checkpoint now, so a new home is covered from its first record (and copy
    any older checkpoint that has no copy yet)."""
    platform.checkpointer.checkpoint(backfill=True)


INIT_HOOKS: list[Callable[[Platform], None]] = [_init_keys, _first_checkpoint]
"""Steps other concerns add to ``ghaf init`` (keys, default project...), run in order."""

DOCTOR_PROBES: list[tuple[str, Callable[[Platform], str], str]] = []
"""Extra ``ghaf doctor`` checks other concerns add: (name, probe returning a detail or
raising, the fix to print when it fails)."""


def init_home(settings: GhafSettings) -> Platform:
    """Create the home directory, migrate the metadata store and run the init hooks.

    Safe to run again: every step is idempotent.
    """
    try:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the home {settings.home}: {exc.strerror}",
            hint="pass --home or set GHAF_HOME to a writable directory",
        ) from exc
    platform = Platform(settings)
    upgrade(platform.engine)
    actor = platform.admin()
    if platform.home_owner() is None:
        _record_home(platform, actor)
        platform.forget_owner()
    for hook in INIT_HOOKS:
        hook(platform)
    return platform


@governed("home.init", resource="home:{platform.settings.home}")
def _record_home(platform: Platform, actor: Actor) -> None:
    """Fix the home's owner (the OS account running init) and bind its roles as data."""
    session = current_session()
    info = session.execute(select(HomeInfo)).scalar_one_or_none()
    if info is None:
        info = HomeInfo(id=1, home_id=uuid.uuid4().hex, created_at=utcnow())
        session.add(info)
    info.owner = actor.name
    _bind_owner(session, actor.name, granted_by=actor.name)


def _bind_owner(session: Session, owner: str, *, granted_by: str) -> None:
    existing = set(
        session.execute(
            select(RoleBindingRow.role).where(
                RoleBindingRow.subject == owner,
                RoleBindingRow.project == ALL_PROJECTS,
                RoleBindingRow.effect == "allow",
            )
        ).scalars()
    )
    for role in OWNER_ROLES:
        if role not in existing:
            session.add(
                RoleBindingRow(
                    subject=owner,
                    role=role,
                    project=ALL_PROJECTS,
                    effect="allow",
                    created_by=granted_by,
                    created_at=utcnow(),
                )
            )


@governed("home.transfer", resource="home:{platform.settings.home}")
def transfer_home(platform: Platform, actor: Actor, new_owner: str) -> str:
    """Hand the home to another OS account: it becomes the owner and gets the owner's roles.

    The previous owner keeps no binding it held as owner; only the owner, signed in to
    the owner's OS account, may do this (the authorizer checks ``home.*``).

    Raises:
        InvalidInputError: ``new_owner`` is not an account on this machine, or is the owner.
    """
    try:
        pwd.getpwnam(new_owner)
    except KeyError as exc:
        raise InvalidInputError(
            f"new owner {new_owner!r} is not an account on this machine",
            hint="give the login name of an existing OS user (see /etc/passwd)",
        ) from exc
    session = current_session()
    info = session.execute(select(HomeInfo)).scalar_one()
    if info.owner == new_owner:
        raise InvalidInputError(f"{new_owner} already owns this home", hint="nothing to do")
    previous = info.owner or actor.name
    session.execute(
        delete(RoleBindingRow).where(
            RoleBindingRow.subject == previous,
            RoleBindingRow.project == ALL_PROJECTS,
            RoleBindingRow.role.in_(OWNER_ROLES),
        )
    )
    info.owner = new_owner
    _bind_owner(session, new_owner, granted_by=actor.name)
    current_operation().details.update({"from": previous, "to": new_owner})
    platform.forget_owner()
    if isinstance(platform.spine.authorizer, RbacAuthorizer):
        platform.spine.authorizer.forget_bindings()
    return previous


@dataclass(frozen=True)
class Check:
    """One line of ``ghaf doctor``: what was checked, whether it is fine, and the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _check(name: str, probe: Callable[[], str], fix: str) -> Check:
    try:
        return Check(name, True, probe())
    except GhafError as exc:
        return Check(name, False, exc.headline, exc.hint or fix)
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure as a line
        return Check(name, False, f"{type(exc).__name__}: {exc}", fix)


def _leftovers(settings: GhafSettings, shown: int = 5) -> str:
    """Crash leftovers fail the check: plaintext at rest that nothing will ever clean."""
    leftovers, in_use = find_leftovers(settings)
    busy = f"; {len(in_use)} scratch directories in use" if in_use else ""
    if not leftovers:
        return f"no crash leftovers{busy}"
    size = format_size(sum(item.size for item in leftovers))
    lines = [item.describe() for item in leftovers[:shown]]
    if len(leftovers) > shown:
        lines.append(f"and {len(leftovers) - shown} more")
    raise GhafError(
        f"{len(leftovers)} crash leftovers ({size}): " + "; ".join(lines),
        hint="run `ghaf gc` (it never removes what a running process uses)",
    )


def run_doctor(settings: GhafSettings) -> list[Check]:
    """Check every configured backend and say what is wrong and how to fix it.

    A missing home is reported, not created: opening the platform would make it with
    the umask's mode (0755), where ``ghaf init`` makes it private (0700).
    """
    if not settings.home.is_dir():
        return [Check("home", False, f"no home at {settings.home}", "run `ghaf init`")]
    checks: list[Check] = []
    platform = Platform(settings)
    try:

        def metadata() -> str:
            with platform.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            missing = pending_heads(platform.engine)
            if missing:
                raise GhafError(f"schema is behind ({len(missing)} branch heads pending)")
            return f"{platform.engine.url.render_as_string(hide_password=True)} migrated"

        checks.append(_check("metadata", metadata, "run `ghaf init` (it migrates)"))

        def artifacts() -> str:
            writer = platform.artifacts.blobs.begin_write()  # type: ignore[attr-defined]
            writer.write(b"doctor")
            writer.abort()
            return f"{settings.resolved_artifact_url} writable (region {settings.artifact_region})"

        checks.append(_check("artifacts", artifacts, "check artifact_url and its permissions"))

        def events() -> str:
            platform.events.publish("doctor.ping", {"ok": True})
            return settings.event_bus_url

        checks.append(_check("events", events, "check event_bus_url, or use memory://"))

        def disk() -> str:
            free = shutil.disk_usage(settings.home).free
            if free < 1 << 30:
                raise GhafError(f"only {free >> 20} MiB free in {settings.home}")
            return f"{free >> 30} GiB free"

        checks.append(_check("disk", disk, "free space or move GHAF_HOME"))
        checks.append(_check("leftovers", functools.partial(_leftovers, settings), "run `ghaf gc`"))
        for name, probe, fix in DOCTOR_PROBES:
            checks.append(_check(name, functools.partial(probe, platform), fix))
    finally:
        platform.close()
    return checks
