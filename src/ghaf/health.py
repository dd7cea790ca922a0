"""Servers' readiness from their backends: each client's own ``health()`` answer.

The NATS event bus and the Redis online store reconnect with backoff and say where they
stand through ``health()``. A server is ready only while every backend it uses is
``connected``: one that is reconnecting or unreachable makes readiness fail with the
reason (the load balancer sends traffic elsewhere), while liveness stays up (restarting
the server would not bring the backend back).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ghaf.logs import get_logger

READY_STATE = "connected"
"""The one ``state`` a backend's ``health()`` reports when it can serve."""
CACHE_S = 1.0
"""An answer is reused this long, so a flood of unauthenticated probes cannot flood the
backends with pings."""
TIMEOUT_S = 3.0
"""A backend whose ``health()`` takes longer counts as not ready."""
_log = get_logger(__name__)


@runtime_checkable
class Reporting(Protocol):
    """A backend client that can say where its connection stands."""

    def health(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Readiness:
    """Whether every backend is connected, each one's report, and why not."""

    ready: bool
    backends: dict[str, dict[str, Any]]
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"ready": self.ready, "backends": self.backends}
        if self.reasons:
            doc["reasons"] = list(self.reasons)
        return doc


def _reason(role: str, report: Mapping[str, Any]) -> str:
    name = f"{role} ({report['backend']})" if report.get("backend") else role
    if report.get("state") == "error":
        return f"{name} did not report its health: {report.get('error')}"
    reason = f"{name} is {report.get('state', 'unknown')}"
    if report.get("since"):
        reason += f" since {report['since']}"
    if report.get("error"):
        reason += f": {report['error']}"
    return reason


class BackendHealth:
    """The readiness of the backends a server uses, keyed by their role.

    Backends without a ``health()`` (SQLite, the in-process bus) live in the server's
    process and are left out: they cannot be unreachable on their own.
    """

    def __init__(self, backends: Mapping[str, object]) -> None:
        self.backends: dict[str, Reporting] = {
            role: b for role, b in backends.items() if isinstance(b, Reporting)
        }
        self._lock = threading.Lock()
        self._last: tuple[float, Readiness] | None = None

    def __bool__(self) -> bool:
        return bool(self.backends)

    def check(self) -> Readiness:
        """Ask each backend now (blocking; at most one round per :data:`CACHE_S`)."""
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < CACHE_S:
                return self._last[1]
            reports: dict[str, dict[str, Any]] = {}
            for role, backend in self.backends.items():
                try:
                    reports[role] = dict(backend.health())
                except Exception as exc:  # noqa: BLE001 - a failing probe is a not-ready backend
                    reports[role] = {"state": "error", "error": f"{type(exc).__name__}: {exc}"}
            reasons = tuple(
                _reason(role, report)
                for role, report in reports.items()
                if report.get("state") != READY_STATE
            )
            readiness = Readiness(not reasons, reports, reasons)
            was_ready = self._last[1].ready if self._last is not None else True
            if readiness.ready != was_ready:
                if readiness.ready:
                    _log.info("backends connected again: ready")
                else:
                    _log.warning("not ready: a backend is down", reasons=list(reasons))
            self._last = (time.monotonic(), readiness)
            return readiness

    async def acheck(self, timeout: float = TIMEOUT_S) -> Readiness:
        """:meth:`check` off the event loop; backends that do not answer within
        ``timeout`` seconds make the server not ready."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.check), timeout)
        except TimeoutError:
            reason = f"the backends did not report their health within {timeout:g} s"
            return Readiness(False, {}, (reason,))
