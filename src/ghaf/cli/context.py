"""What every CLI command gets: the settings built once, the platform, and who is acting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ghaf.platform import Platform
    from ghaf.security.identity import Actor
    from ghaf.settings import GhafSettings

LOGIN_FILE = "credentials/token"
"""Where ``ghaf login`` keeps the access token (0600, inside the 0700 home)."""


def login_path(home: Path) -> Path:
    """The file ``ghaf login`` writes and every command reads."""
    return home / LOGIN_FILE


@dataclass
class CliState:
    """Settings and consoles shared by the commands of one invocation."""

    settings: GhafSettings
    console: Console = field(default_factory=Console)
    _platform: Platform | None = None
    _actor: Actor | None = None

    def platform(self) -> Platform:
        """Open the platform once per invocation."""
        if self._platform is None:
            from ghaf.platform import Platform  # SQLAlchemy and the stores: only when used

            self._platform = Platform(self.settings)
        return self._platform

    def credential(self) -> str | None:
        """The bearer credential presented: ``--token``/``GHAF_TOKEN``, else ``ghaf login``'s."""
        if self.settings.token is not None:
            return self.settings.token.get_secret_value().strip()
        saved = login_path(self.settings.home)
        return saved.read_text().strip() if saved.is_file() else None

    def actor(self) -> Actor:
        """Who this invocation acts as: proven by a credential, or the home's OS owner.

        Raises:
            PermissionDeniedError: a refused credential, another OS account than the
                owner's with no credential, or a retired identity setting (all audited).
        """
        if self._actor is None:
            platform = self.platform()
            token = self.credential()
            if token:
                from ghaf.access.http_auth import authenticate  # starlette: only when needed

                actor = authenticate(platform, {"authorization": f"Bearer {token}"}, source="cli")
                platform.check_not_asserted(actor)
            else:
                actor = platform.admin()
            self._actor = actor
        return self._actor

    def close(self) -> None:
        if self._platform is not None:
            self._platform.close()


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` the root callback stored."""
    value = ctx.find_root().obj
    if not isinstance(value, CliState):  # only if a command runs without the root callback
        raise RuntimeError("the ghaf root callback did not run")
    return value
