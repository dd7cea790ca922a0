"""Structured logging: human lines by default, JSON lines for log pipelines, secrets masked.

Every line carries the current request or run id (bound with :func:`bind_ids`).

structlog (with its console renderer's rich tracebacks) costs about a tenth of a second to
import, more than a short command such as ``ghaf models list`` spends on its work, so it
is imported at the first line actually logged: :func:`configure_logging` records the
configuration and :func:`get_logger` hands out a proxy that applies it then.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Literal, TextIO, cast

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|private|credential", re.I)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z0-9+.-]+://[^:/@\s]+):(?P<pw>[^@\s]+)@", re.I)
_MASK = "***"
_IDS: ContextVar[dict[str, str]] = ContextVar("ghaf_log_ids", default={})  # noqa: B039 - never mutated
"""Ids bound by :func:`bind_ids`, merged into every line (copied, never mutated in place)."""
_pending: tuple[str, str, Any] | None = None
"""The configuration :func:`configure_logging` recorded and structlog has not applied yet."""


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


def merge_ids(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the ids bound with :func:`bind_ids` (explicit keys win)."""
    for key, value in _IDS.get().items():
        event.setdefault(key, value)
    return event


def configure_logging(
    fmt: Literal["human", "json"] = "human", level: str = "INFO", stream: Any = None
) -> None:
    """Configure logging once, at the entry point (applied when the first line is logged)."""
    global _pending
    _pending = (fmt, level, stream)
    if "structlog" in sys.modules:  # already in use: apply now, as a caller expects
        _structlog()


def _structlog() -> ModuleType:
    """structlog, with the recorded configuration applied (imported on first use)."""
    global _pending
    import structlog

    if _pending is not None:
        fmt, level, stream = _pending
        _pending = None
        renderer: Any = (
            structlog.processors.JSONRenderer()
            if fmt == "json"
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        structlog.configure(
            processors=[
                merge_ids,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                mask_secrets,
                structlog.processors.format_exc_info,
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
            logger_factory=structlog.PrintLoggerFactory(
                file=stream or cast(TextIO, _CurrentStderr())
            ),
            cache_logger_on_first_use=False,
        )
    return structlog


class _Logger:
    """A module's logger that imports and configures structlog at its first use."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            self._logger = _structlog().get_logger(self._name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> Any:
    """A bound logger named after its module."""
    return _Logger(name)


def new_id() -> str:
    """A fresh request or run id."""
    return uuid.uuid4().hex


@contextmanager
def bind_ids(**ids: str) -> Iterator[None]:
    """Attach ids (``request_id=...``, ``run_id=...``) to every log line inside the block."""
    token = _IDS.set({**_IDS.get(), **ids})
    try:
        yield
    finally:
        _IDS.reset(token)


def current_request_id() -> str | None:
    """The request id bound to this context, if any."""
    return _IDS.get().get("request_id")
