"""The process-wide default platform for the SDK's short forms (``ghaf.start_run()``)."""

from __future__ import annotations

import atexit
import threading

from ghaf.platform import Platform

_lock = threading.Lock()
_platform: Platform | None = None


def default_platform() -> Platform:
    """The platform built from the settings (environment, ``ghaf.toml``), opened once."""
    global _platform
    with _lock:
        if _platform is None:
            from ghaf.home import init_home
            from ghaf.settings import load_settings

            _platform = init_home(load_settings())
            atexit.register(_platform.close)
        return _platform


def set_default_platform(platform: Platform | None) -> None:
    """Use ``platform`` for the short forms (``None`` forgets it)."""
    global _platform
    with _lock:
        _platform = platform
