"""The live loop inside ``ghaf server``: a background thread in each worker process, of
which the one holding the home's live-loop lock runs the passes (monitors, scheduled
SLOs, retraining, and the home's chores: audit shipping and retention when due).

The lock is an ``flock`` on ``HOME/run/live-loop.lock``: the kernel drops it when its
process ends however it ends, and another worker (or the next server) takes it at its
next try, so a team's server monitors, evaluates SLOs and closes the loop without a
second process to keep alive, and never twice at once. Everything a pass reads and
writes is in the metadata database, so the new holder picks up where the old one left.

The loop acts as the home's owner, proven by the OS account the server runs as (the
kernel's ``geteuid``, as every local command); a server run by any other account does
not run it and says why in ``/health/ready``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import IO, Any

from ghaf.errors import GhafError
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform

LOCK_FILE = Path("run") / "live-loop.lock"
_log = get_logger(__name__)


class LiveLoopThread:
    """Runs :class:`~ghaf.liveloop.LiveLoop` passes every ``every_s`` seconds while this
    process holds the live-loop lock; :meth:`stop` ends it within one wait."""

    def __init__(self, platform: Platform, every_s: float) -> None:
        self.platform, self.every_s = platform, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ghaf-live-loop", daemon=True)
        self._lock_file: IO[bytes] | None = None
        self.state: dict[str, Any] = {"running": False, "passes": 0, "last_error": None}

    def start(self) -> LiveLoopThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._release()

    def _take_lock(self) -> bool:
        path = Path(self.platform.settings.home) / LOCK_FILE
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    def _release(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _run(self) -> None:
        from ghaf.liveloop import LiveLoop

        while not self._stop.is_set() and not self._take_lock():
            self._stop.wait(self.every_s)
        if self._stop.is_set():
            return
        try:
            actor = self.platform.admin()
        except GhafError as exc:
            self.state.update(last_error=f"the live loop does not run: {exc.headline}")
            _log.warning("live loop not started", error=exc.headline)
            self._release()
            return
        self.state.update(running=True, pid=os.getpid())
        try:
            with LiveLoop(self.platform, actor, home_chores=True) as loop:
                while not self._stop.is_set():
                    self._pass(loop)
                    self._stop.wait(self.every_s)
        finally:  # whatever ended it, another worker may take over
            self.state["running"] = False
            self._release()

    def _pass(self, loop: Any) -> None:
        try:
            done = loop.tick()
        except GhafError as exc:  # a refusal or a backend down: try again next time
            self.state.update(last_error=exc.headline, last_pass=utcnow().isoformat())
            _log.warning("live loop pass failed", error=exc.headline)
            return
        self.state.update(
            passes=self.state["passes"] + 1,
            last_pass=done.at.isoformat(),
            last_error="; ".join(done.errors) or None,
        )
