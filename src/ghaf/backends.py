"""One table from URL scheme to backend, imported lazily; the only place backends are chosen."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ghaf.artifacts.base import BlobStore
from ghaf.errors import ConfigError
from ghaf.events.base import EventBus

# concern -> scheme -> "module:Class"
BACKENDS: dict[str, dict[str, str]] = {
    "artifacts": {
        "file": "ghaf.artifacts.local:LocalBlobStore",
        "s3": "ghaf.artifacts.s3:S3BlobStore",
    },
    "events": {
        "memory": "ghaf.events.memory:InProcessEventBus",
        "nats": "ghaf.events.nats:NatsEventBus",
    },
    "online": {
        "sqlite": "ghaf.features.online_sqlite:SqliteOnlineStore",
        "redis": "ghaf.features.online_redis:RedisOnlineStore",
    },
}


def register_backend(concern: str, scheme: str, target: str) -> None:
    """Add a third-party backend; registering a scheme twice is an error."""
    table = BACKENDS.setdefault(concern, {})
    if scheme in table:
        raise ConfigError(f"a {concern} backend for scheme {scheme!r} is already registered")
    table[scheme] = target


def backend_class(concern: str, url: str) -> Any:
    """The class registered for ``url``'s scheme under ``concern``."""
    scheme = urlparse(url).scheme
    table = BACKENDS.get(concern, {})
    if scheme not in table:
        accepted = ", ".join(f"{s}://" for s in sorted(table))
        raise ConfigError(f"{concern} URL {url!r} has an unsupported scheme; use one of {accepted}")
    module_name, _, class_name = table[scheme].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def open_blob_store(url: str, *, region: str, endpoint_url: str | None = None) -> BlobStore:
    """The blob backend for an artifact URL."""
    cls = backend_class("artifacts", url)
    if urlparse(url).scheme == "file":
        return cls(Path(unquote(urlparse(url).path)), region=region)  # type: ignore[no-any-return]
    return cls(url, region=region, endpoint_url=endpoint_url)  # type: ignore[no-any-return]


def open_event_bus(url: str) -> EventBus:
    """The event bus for a bus URL."""
    cls = backend_class("events", url)
    if urlparse(url).scheme == "memory":
        return cls()  # type: ignore[no-any-return]
    return cls(url)  # type: ignore[no-any-return]
