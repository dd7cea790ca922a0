"""The background writer: runs buffer what they log; one thread flushes them in batches.

Guarantees: everything logged is written when the run ends (normally or by an
exception), at interpreter exit (``atexit``) and on SIGTERM. A ``kill -9`` loses at
most what was logged since the last flush, i.e. at most ``flush_interval`` seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
import weakref
from collections import deque
from types import FrameType
from typing import TYPE_CHECKING, Any

from ghaf.logs import get_logger

if TYPE_CHECKING:
    from ghaf.tracking.run import ActiveRun

_log = get_logger("ghaf.tracking")


class BackgroundWriter:
    """A daemon thread that flushes every registered run every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._runs: weakref.WeakSet[ActiveRun] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ghaf-tracking-writer", daemon=True)
        self._thread.start()

    def add(self, run: ActiveRun) -> None:
        with self._lock:
            self._runs.add(run)

    def discard(self, run: ActiveRun) -> None:
        with self._lock:
            self._runs.discard(run)

    def wake(self) -> None:
        """Flush now (a run's buffer is large)."""
        self._wake.set()

    def runs(self) -> list[ActiveRun]:
        with self._lock:
            return list(self._runs)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            for run in self.runs():
                try:
                    run.flush()
                except Exception as exc:  # noqa: BLE001 - the points stay queued; retry
                    _log.warning("tracking flush failed", run_id=run.run_id, error=str(exc))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


_writer: BackgroundWriter | None = None
_writer_lock = threading.Lock()
_previous_sigterm: Any = None


def writer(interval: float) -> BackgroundWriter:
    """The process's writer (started on first use, with the first run's interval)."""
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = BackgroundWriter(interval)
            atexit.register(_at_exit)
            _install_sigterm()
        elif interval < _writer.interval:
            _writer.interval = interval
        return _writer


def close_all(status: str) -> None:
    """Flush every active run and end it with ``status``."""
    if _writer is None:
        return
    for run in _writer.runs():
        with contextlib.suppress(Exception):
            run.end(status)


def _at_exit() -> None:
    close_all("finished")
    if _writer is not None:
        _writer.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    close_all("killed")
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    else:
        raise SystemExit(128 + signum)


def _install_sigterm() -> None:
    """Flush on SIGTERM, then do what the process did before (default: exit)."""
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current in (signal.SIG_IGN,) or current is _on_sigterm:
        return
    _previous_sigterm = current if callable(current) else None
    signal.signal(signal.SIGTERM, _on_sigterm)


class PointBuffer:
    """Points a run logged and has not written yet; ``deque`` appends are thread-safe."""

    __slots__ = ("points",)

    def __init__(self) -> None:
        self.points: deque[tuple[str, float, int, float]] = deque()

    def drain(self) -> list[tuple[str, float, int, float]]:
        taken = []
        pop = self.points.popleft
        for _ in range(len(self.points)):
            taken.append(pop())
        return taken
