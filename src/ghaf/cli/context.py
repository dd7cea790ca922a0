"""What every CLI command gets: the settings built once, the platform, and who is acting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from ghaf.cli.credentials import saved_token
from ghaf.cli.output import console
from ghaf.errors import ConfigError

if TYPE_CHECKING:
    from ghaf.client.http import Client
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
    console: Console = field(default_factory=console)
    _platform: Platform | None = None
    _actor: Actor | None = None
    _remote: Client | None = None

    @property
    def remote_url(self) -> str | None:
        """The server this invocation talks to (``GHAF_URL``, ``ghaf --url``); None:
        embedded mode, on the home."""
        url = self.settings.url
        return url.rstrip("/") if url else None

    def remote(self) -> Client | None:
        """The client of the server at :attr:`remote_url`, or None in embedded mode.

        Raises:
            ConfigError: a server is named but no credential is there for it.
        """
        url = self.remote_url
        if url is None:
            return None
        if self._remote is None:
            token = (
                self.settings.token.get_secret_value().strip()
                if self.settings.token is not None
                else saved_token(url)
            )
            if not token:
                raise ConfigError(
                    f"no credential for {url}",
                    hint=f"ghaf login --server {url} --token TOKEN, or set GHAF_TOKEN",
                )
            from ghaf.client.http import Client  # httpx: only for a server

            self._remote = Client(url, token)
        return self._remote

    def platform(self) -> Platform:
        """Open the platform once per invocation.

        Raises:
            ConfigError: a server is named (remote mode) and this command works on a
                home only.
        """
        if self.remote_url is not None:
            raise ConfigError(
                f"this command works on a Ghaf home, and GHAF_URL names a server "
                f"({self.remote_url}); it does not run against a server",
                hint="unset GHAF_URL (or drop --url) to run it on a local home",
            )
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
                from ghaf.access.http_auth import authenticate

                actor = authenticate(platform, {"authorization": f"Bearer {token}"}, source="cli")
                platform.check_not_asserted(actor)
            else:
                actor = platform.admin()
            self._actor = actor
        return self._actor

    def close(self) -> None:
        if self._platform is not None:
            self._platform.close()
        if self._remote is not None:
            self._remote.close()


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` the root callback stored."""
    value = ctx.find_root().obj
    if not isinstance(value, CliState):  # only if a command runs without the root callback
        raise RuntimeError("the ghaf root callback did not run")
    return value
