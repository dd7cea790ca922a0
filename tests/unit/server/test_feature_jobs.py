"""The control plane's jobs: what a client reads about work that outlives its request.

A job answers the same from any process of the server; one whose process died (a server
stop, a crash) reads as interrupted, never as running forever; a full queue is refused
with nothing recorded; a failure carries the problem a request would have answered.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from ghaf.errors import BackendUnavailableError, InvalidInputError, NotFoundError
from ghaf.server.jobs import Job, JobBoard

CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from ghaf.server.jobs import JobBoard

    started = threading.Event()

    def work():
        started.set()
        threading.Event().wait()  # runs until the process is killed

    board = JobBoard(Path(sys.argv[1]))
    job = board.submit("materialize", "fraud", "alice", {"full": True}, work)
    assert started.wait(60)
    print(job.id, flush=True)
    threading.Event().wait()
    """
)


def _settled(board: JobBoard, job_id: str, gate: threading.Event) -> Job:
    """The job once it is no longer queued or running (bounded: 30 s)."""
    for _ in range(3000):
        job = board.get(job_id)
        if job.status not in ("queued", "running"):
            return job
        gate.wait(0.01)
    raise AssertionError(f"job {job_id} still {board.get(job_id).status}")


def test_a_job_of_a_killed_server_reads_as_interrupted_not_running(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            job_id = child.stdout.readline().strip()
            here = JobBoard(root)  # another process of the same server
            running = here.get(job_id)
        finally:
            child.kill()
    assert (running.status, running.project, running.request) == (
        "running",
        "fraud",
        {"full": True},
    )
    stopped = here.get(job_id)
    assert stopped.status == "interrupted"
    assert stopped.error is not None and "submit it again" in stopped.error["hint"]
    assert [j.id for j in here.list(lambda project: project == "fraud")] == [job_id]
    assert here.list(lambda project: project == "retail") == []


def test_results_and_failures_are_kept_and_a_full_queue_records_nothing(tmp_path: Path) -> None:
    board = JobBoard(tmp_path / "jobs", workers=1, max_waiting=1)
    started, release, gate = threading.Event(), threading.Event(), threading.Event()

    def slow() -> dict[str, Any]:
        started.set()
        release.wait(60)
        return {"rows": 5}

    def bad() -> dict[str, Any]:
        raise InvalidInputError("column 'x' is missing", hint="add it")

    first = board.submit("retrieval", "fraud", "alice", {}, slow)
    assert started.wait(60)
    second = board.submit("retrieval", "fraud", "alice", {}, bad)
    assert board.get(second.id).status == "queued"
    with pytest.raises(BackendUnavailableError, match="1 jobs waiting"):
        board.submit("retrieval", "fraud", "alice", {}, slow)
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 2  # the refused one left nothing
    release.set()
    done = _settled(board, first.id, gate)
    assert (done.status, done.result) == ("succeeded", {"rows": 5})
    assert done.started_at is not None and done.finished_at is not None
    failed = _settled(board, second.id, gate)
    assert failed.status == "failed"
    assert failed.error == {
        "type": "https://ghaf.dev/problems/invalid-input",
        "title": "column 'x' is missing",
        "status": 400,
        "hint": "add it",
    }
    assert JobBoard(tmp_path / "jobs").get(first.id) == done  # any process reads the same
    with pytest.raises(NotFoundError):
        board.get("0" * 32)
