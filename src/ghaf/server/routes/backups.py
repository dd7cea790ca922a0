"""Backups of the home the server runs on, as jobs, to the destination its settings name.

``POST /backups`` takes no path: each backup goes to a new folder, named by its id,
under ``backup.destination`` (a directory or ``s3://`` prefix of the server), so a
client never picks where the server writes. It answers 202 with a job; the backup runs
while the server keeps taking writes (``ghaf.backup``). Backups copy every project, so
the actions count only for roles bound on '*' (``backup_operator``). Restoring is not
offered here: it writes a new home on the machine that runs it (``ghaf restore``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from ghaf.backup import create_backup
from ghaf.backup.service import new_backup_id
from ghaf.errors import NotFoundError
from ghaf.platform import Platform
from ghaf.security.rbac import ALL_PROJECTS
from ghaf.server.auth import Caller, caller
from ghaf.server.jobs import JOB_ID, JOBS_DIR, JobBoard
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["backups"])
CallerDep = Annotated[Caller, Depends(caller)]
READ = "backup.read"
KIND = "backup"
_JOB_RESPONSE = {"description": "The job, as GET /backups/jobs/{job_id} shows it."}
_BOARDS: dict[Path, JobBoard] = {}
_BOARDS_LOCK = threading.Lock()


def board(platform: Platform) -> JobBoard:
    """This process's board of backup jobs (one at a time: a backup reads everything)."""
    root = platform.settings.home / JOBS_DIR / "backups"
    with _BOARDS_LOCK:
        found = _BOARDS.get(root)
        if found is None:
            found = _BOARDS[root] = JobBoard(root, workers=1, max_waiting=2)
        return found


def _destination(platform: Platform, backup_id: str) -> str:
    base = platform.settings.backup.destination
    if not base:  # nothing the caller can fix, nor a fault of the server's: none is set
        raise NotFoundError(
            "this server has no backup destination",
            hint="the operator sets backup.destination (a directory or s3://BUCKET/PREFIX) "
            "in the server's ghaf.toml",
        )
    return f"{base.rstrip('/')}/{backup_id}"


@router.write(
    "POST", "/backups", action="backup.create", status_code=202, responses={202: _JOB_RESPONSE}
)
async def start_backup(who: CallerDep) -> JsonResponse:
    """Back the home up to a new folder under the server's ``backup.destination``, as a
    job; the job's result is the backup (id, destination, audit_seq, tables, blobs...)."""
    await who.authorize("backup.create", "backup:home", ALL_PROJECTS)  # before any setting
    backup_id = new_backup_id()
    destination = _destination(who.platform, backup_id)
    platform, actor = who.platform, who.actor

    def work() -> dict[str, Any]:
        return create_backup(platform, actor, destination).to_json()

    jobs = board(platform)
    request = {"id": backup_id}
    job = await run_in_threadpool(jobs.submit, KIND, ALL_PROJECTS, actor.name, request, work)
    return JsonResponse(job, status_code=202, headers={"location": f"backups/jobs/{job.id}"})


@router.read("/backups/jobs", action=READ)
async def backup_jobs(
    who: CallerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> JsonResponse:
    """The newest backup jobs, newest first."""
    await who.authorize(READ, "backups", ALL_PROJECTS)
    found = await run_in_threadpool(board(who.platform).list, lambda _: True, limit)
    return JsonResponse({"jobs": found})


@router.read("/backups/jobs/{job_id}", action=READ)
async def backup_job(
    job_id: Annotated[str, PathParam(pattern=JOB_ID)], who: CallerDep
) -> JsonResponse:
    """A backup job: queued, running, succeeded (with the backup), failed (with the
    problem) or interrupted (the server stopped first: start another)."""
    await who.authorize(READ, f"backup_job:{job_id}", ALL_PROJECTS)
    return JsonResponse(await run_in_threadpool(board(who.platform).get, job_id))
