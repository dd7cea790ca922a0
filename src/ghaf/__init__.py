"""Ghaf: a governed MLOps platform.

The top-level names are imported lazily, so ``import ghaf.<concern>`` (a drift check, a
feature lookup) does not pay for loading the model flavors and the tracker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghaf.deps import install_extras_finder
from ghaf.lazy import lazy_getattr

if TYPE_CHECKING:
    from ghaf.client import connect
    from ghaf.platform import Platform
    from ghaf.registry.default import load_model
    from ghaf.security.identity import Actor
    from ghaf.settings import GhafSettings, load_settings
    from ghaf.tracking import start_run

_EXPORTS = {
    "Actor": "ghaf.security.identity",
    "GhafSettings": "ghaf.settings",
    "Platform": "ghaf.platform",
    "connect": "ghaf.client",
    "load_model": "ghaf.registry.default",
    "load_settings": "ghaf.settings",
    "start_run": "ghaf.tracking",
}

__all__ = [
    "Actor",
    "GhafSettings",
    "Platform",
    "connect",
    "load_model",
    "load_settings",
    "start_run",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
install_extras_finder()  # a missing extra names itself, wherever Ghaf imports it
