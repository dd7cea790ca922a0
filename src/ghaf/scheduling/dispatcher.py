"""A dispatcher: executor slots that claim queued jobs by fair share and run them.

``ghaf jobs work`` runs one. Each claimed job names the dispatcher as its owner
(``HOST:PID:START``, the process's start time telling a reused process id apart), and
the dispatcher marks its jobs alive every ``lease_s / 3`` seconds. Any dispatcher, at
each pass, gives back to the queue the running jobs whose owner is gone: a process on
this host that no longer exists, or any owner whose heartbeat is older than the lease.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ghaf.errors import AlreadyExistsError, GhafError
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.scheduling.queue import Job, claim_next, finish_job, heartbeat, reclaim_jobs
from ghaf.scheduling.tables import QueuedJobRow
from ghaf.security.identity import Actor

LEASE_S = 120.0
"""A claim whose owner has not marked it alive for this long returns to the queue."""
Work = Callable[[Job], dict[str, Any]]
"""Runs one job; its return value is the job's result (an exception fails the job)."""
_log = get_logger(__name__)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or '' elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_owner(pid: int | None = None) -> str:
    """This process's owner name: ``HOST:PID:START``."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named ``owner`` still runs: None when it is on another host
    (only its heartbeat can tell)."""
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's process: it exists
        pass
    return not started or _start_time(pid) == started


def find_orphans(
    platform: Platform, *, lease_s: float = LEASE_S, now: datetime | None = None
) -> dict[str, str]:
    """Running jobs whose owner is gone: job id -> owner."""
    now = now or utcnow()
    stale = now - timedelta(seconds=lease_s)
    query = select(QueuedJobRow.id, QueuedJobRow.owner, QueuedJobRow.heartbeat_at).where(
        QueuedJobRow.status == "running"
    )
    orphans: dict[str, str] = {}
    with platform.read_session() as session:
        for job_id, owner, beat in session.execute(query):
            if owner is None:
                continue
            alive = owner_alive(owner)
            if alive is False or beat is None or beat < stale:
                orphans[job_id] = owner
    return orphans


class Dispatcher:
    """``slots`` executor slots in this process, claiming jobs as ``actor`` and running
    each with ``work`` in a thread of its own.

    Args:
        owner: the name claims are held under (default: this process).
        lease_s: how long a claim lives without a heartbeat.
    """

    def __init__(
        self,
        platform: Platform,
        actor: Actor,
        work: Work,
        *,
        slots: int = 1,
        owner: str | None = None,
        lease_s: float = LEASE_S,
    ) -> None:
        self.platform, self.actor, self.work = platform, actor, work
        self.slots, self.lease_s = slots, lease_s
        self.owner = owner or process_owner()
        self.claimed: list[Job] = []
        """Every job this dispatcher claimed, in order."""
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="ghaf-job")
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._last_beat = time.monotonic()

    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def tick(self) -> int:
        """One pass: reclaim orphans, mark this dispatcher's jobs alive, fill free slots.
        How many jobs it claimed."""
        orphans = find_orphans(self.platform, lease_s=self.lease_s)
        orphans = {j: o for j, o in orphans.items() if o != self.owner}
        if orphans:
            back = reclaim_jobs(self.platform, self.actor, orphans)
            if back:
                _log.warning("jobs returned to the queue", jobs=back)
        if self.busy() and time.monotonic() - self._last_beat > self.lease_s / 3:
            heartbeat(self.platform, self.actor, self.owner)
            self._last_beat = time.monotonic()
        claimed = 0
        while self.busy() < self.slots:
            job = claim_next(self.platform, self.actor, self.owner)
            if job is None:
                break
            claimed += 1
            self.claimed.append(job)
            with self._lock:
                self._running[job.id] = self._pool.submit(self._run, job)
        return claimed

    def _run(self, job: Job) -> None:
        try:
            try:
                result = self.work(job)
            except BaseException as exc:  # noqa: BLE001 - every failure is the job's end
                if not isinstance(exc, GhafError):
                    _log.exception("job failed", job=job.id)
                error = exc.headline if isinstance(exc, GhafError) else repr(exc)
                finish_job(
                    self.platform, self.actor, job.id, self.owner, status="failed", error=error
                )
            else:
                finish_job(
                    self.platform, self.actor, job.id, self.owner, status="succeeded", result=result
                )
        except AlreadyExistsError:
            _log.warning("job was taken back before it ended", job=job.id)
        finally:
            with self._lock:
                self._running.pop(job.id, None)

    def run(
        self, *, until_idle: bool = False, poll_s: float = 1.0, stop: threading.Event | None = None
    ) -> None:
        """Dispatch until ``stop`` is set, or (``until_idle``) until nothing waits or runs."""
        stop = stop or threading.Event()
        while not stop.is_set():
            claimed = self.tick()
            if until_idle and not claimed and not self.busy():
                return
            if not claimed:
                stop.wait(poll_s if not until_idle else min(poll_s, 0.05))

    def close(self) -> None:
        """Wait for the jobs this dispatcher runs to end."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
