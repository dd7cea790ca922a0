"""Jobs of the control plane: work that outlives its request, on a bounded pool per process.

A job's record is a JSON file in ``<home>/jobs`` (0700), written whole and renamed into
place at each change of state, so any worker process of the server answers for a job
another one runs, and a client that disconnects loses nothing: it asks again by id.

While a job is queued or running its process holds an exclusive ``flock`` on the job's
lock file. The kernel drops the lock when the process ends, however it ends, so a job
whose record still says queued or running but whose lock is free was cut short by a
server stop or crash: it reads as ``interrupted``, and its governed work was rolled
back with its transaction (submit it again). Jobs are not resumed after a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from ghaf.errors import BackendUnavailableError, GhafError, NotFoundError
from ghaf.logs import get_logger
from ghaf.server.problems import problem_type, status_of

JOBS_DIR = "jobs"
"""The home's subdirectory holding job records."""
ACTIVE = frozenset({"queued", "running"})
JOB_ID = r"^[0-9a-f]{32}$"
"""What a job id looks like (random, 128 bits): anything else names no job."""
_log = get_logger(__name__)


@dataclass(frozen=True)
class Job:
    """A job's record: what was asked, by whom, in which project, and how it went."""

    id: str
    kind: str
    project: str
    actor: str
    status: str
    """``queued``, ``running``, ``succeeded``, ``failed`` or ``interrupted``."""
    submitted_at: datetime
    request: dict[str, Any]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    """A failed job's problem: ``type``, ``title``, ``status``, ``hint`` (as HTTP answers)."""


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:  # removed meanwhile (a refused submission)
        return 0


def problem_of(error: BaseException) -> dict[str, Any]:
    """The problem+json body a request failing with ``error`` would have been answered."""
    if isinstance(error, GhafError):
        body: dict[str, Any] = {
            "type": problem_type(error),
            "title": error.headline,
            "status": status_of(error),
        }
        if error.hint:
            body["hint"] = error.hint
        return body
    return {
        "type": "about:blank",
        "title": "the job failed unexpectedly",
        "status": 500,
        "hint": "report the job id to the operator; the server's log holds the cause",
    }


class JobBoard:
    """Submits jobs to ``workers`` threads of this process and answers for every job of
    the home, whichever process runs it.

    Args:
        root: the directory of job records (``<home>/jobs``).
        workers: jobs this process runs at once.
        max_waiting: jobs that may wait for a worker; one more is refused (503).
    """

    def __init__(self, root: Path, *, workers: int = 1, max_waiting: int = 16) -> None:
        with contextlib.suppress(FileExistsError):
            root.mkdir(mode=0o700, parents=True)
        self.root = root
        self._queue: queue.Queue[tuple[Job, Callable[[], dict[str, Any]], IO[bytes]]] = queue.Queue(
            maxsize=max_waiting
        )
        self._held: set[str] = set()
        self._lock = threading.Lock()
        # Daemon threads: a server that stops does not wait for jobs; they read as
        # interrupted, their transactions rolled back.
        for n in range(workers):
            threading.Thread(target=self._work, name=f"ghaf-job-{n}", daemon=True).start()

    def submit(
        self,
        kind: str,
        project: str,
        actor: str,
        request: dict[str, Any],
        work: Callable[[], dict[str, Any]],
    ) -> Job:
        """Queue ``work`` (its return value is the job's result); the job as recorded.

        Raises:
            BackendUnavailableError: every worker is busy and the queue is full.
        """
        job = Job(secrets.token_hex(16), kind, project, actor, "queued", datetime.now(UTC), request)
        lock = self._lock_path(job.id).open("ab")
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the job ends or this process does
        with self._lock:
            self._held.add(job.id)
        self._write(job)
        try:
            self._queue.put_nowait((job, work, lock))
        except queue.Full:
            self._release(job.id, lock)
            self._path(job.id).unlink(missing_ok=True)
            raise BackendUnavailableError(
                f"this server already has {self._queue.maxsize} jobs waiting",
                hint="retry in a minute",
            ) from None
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id`` as it stands.

        Raises:
            NotFoundError: no such job.
        """
        job = self._read(job_id)
        if job.status in ACTIVE and not self._running(job_id):
            job = self._read(job_id)  # it may have finished between the two looks
            if job.status in ACTIVE:
                return replace(
                    job,
                    status="interrupted",
                    error={
                        "type": "about:blank",
                        "title": "the server stopped before the job finished",
                        "status": 503,
                        "hint": "nothing of it was kept; submit it again",
                    },
                )
        return job

    def list(self, may_read: Callable[[str], bool], limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs of the projects ``may_read`` allows, newest first."""
        paths = sorted(self.root.glob("*.json"), key=_mtime, reverse=True)
        allowed: dict[str, bool] = {}
        found: list[Job] = []
        for path in paths:
            with contextlib.suppress(NotFoundError):
                job = self.get(path.stem)
                if job.project not in allowed:
                    allowed[job.project] = may_read(job.project)
                if allowed[job.project]:
                    found.append(job)
            if len(found) >= limit:
                break
        return found

    def _work(self) -> None:
        while True:
            job, work, lock = self._queue.get()
            running = replace(job, status="running", started_at=datetime.now(UTC))
            self._write(running)
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 - every failure is the job's answer
                if not isinstance(exc, GhafError):
                    _log.exception("job failed", job=job.id, kind=job.kind)
                done = replace(running, status="failed", error=problem_of(exc))
            else:
                done = replace(running, status="succeeded", result=result)
            try:
                # Written before the lock goes: a reader never sees a free lock first.
                self._write(replace(done, finished_at=datetime.now(UTC)))
            finally:
                self._release(job.id, lock)

    def _release(self, job_id: str, lock: IO[bytes]) -> None:
        with self._lock:
            self._held.discard(job_id)
        self._lock_path(job_id).unlink(missing_ok=True)
        lock.close()

    def _running(self, job_id: str) -> bool:
        """Whether a live process (this one or another) holds the job's lock."""
        with self._lock:
            if job_id in self._held:
                return True
        try:
            handle = self._lock_path(job_id).open("rb")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def _path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def _lock_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.lock"

    def _write(self, job: Job) -> None:
        data = orjson.dumps(asdict(job), option=orjson.OPT_UTC_Z)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=f".{job.id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            Path(name).replace(self._path(job.id))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _read(self, job_id: str) -> Job:
        try:
            raw = orjson.loads(self._path(job_id).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError) as exc:
            raise NotFoundError(
                f"job {job_id} does not exist", hint="check the id the job was submitted under"
            ) from exc
        for key in ("submitted_at", "started_at", "finished_at"):
            if raw.get(key) is not None:
                raw[key] = datetime.fromisoformat(raw[key])
        return Job(**raw)
