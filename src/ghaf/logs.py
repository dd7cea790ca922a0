"""Structured logging: human lines by default, JSON lines for log pipelines, secrets masked.

Every line carries the current request or run id (bound with :func:`bind_ids`).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO, cast

import structlog

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|private|credential", re.I)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z0-9+.-]+://[^:/@\s]+):(?P<pw>[^@\s]+)@", re.I)
_MASK = "***"


def mask_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide values of secret-looking keys and passwords in URLs."""
    for key, value in list(event.items()):
        if _SECRET_KEY.search(key):
            event[key] = _MASK
        elif isinstance(value, str) and "@" in value:
            event[key] = _URL_PASSWORD.sub(rf"\g<scheme>:{_MASK}@", value)
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of the write.

    Binding the object ``sys.stderr`` was at configuration time breaks once something
    swaps it and closes its own (a CLI test runner, a capturing test harness): every later
    log line would raise "I/O operation on closed file".
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(
    fmt: Literal["human", "json"] = "human", level: str = "INFO", stream: Any = None
) -> None:
    """Configure structlog once, at the entry point."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A bound logger named after its module."""
    return structlog.get_logger(name)


def new_id() -> str:
    """A fresh request or run id."""
    return uuid.uuid4().hex


@contextmanager
def bind_ids(**ids: str) -> Iterator[None]:
    """Attach ids (``request_id=...``, ``run_id=...``) to every log line inside the block."""
    with structlog.contextvars.bound_contextvars(**ids):
        yield


def current_request_id() -> str | None:
    """The request id bound to this context, if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None
