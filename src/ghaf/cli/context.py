"""What every CLI command gets: the settings built once, and a way to open the platform."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from rich.console import Console

from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.settings import GhafSettings


@dataclass
class CliState:
    """Settings and consoles shared by the commands of one invocation."""

    settings: GhafSettings
    console: Console = field(default_factory=Console)
    _platform: Platform | None = None

    def platform(self) -> Platform:
        """Open the platform once per invocation."""
        if self._platform is None:
            self._platform = Platform(self.settings)
        return self._platform

    def actor(self) -> Actor:
        """The person (or service) this invocation acts as, proven, never asserted."""
        return self.platform().admin()

    def close(self) -> None:
        if self._platform is not None:
            self._platform.close()


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` the root callback stored."""
    value = ctx.find_root().obj
    if not isinstance(value, CliState):  # only if a command runs without the root callback
        raise RuntimeError("the ghaf root callback did not run")
    return value
