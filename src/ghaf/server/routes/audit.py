"""The audit trail: a project's records (for its auditors), the whole trail verified, and
signed checkpoints made on demand."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ghaf.access.audit import create_checkpoint, verify_trail
from ghaf.platform import Platform
from ghaf.security.audit import export_records
from ghaf.security.checkpoints import Checkpoint
from ghaf.server.auth import Caller, caller
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["audit"])
CallerDep = Annotated[Caller, Depends(caller)]
HOME_WIDE = "*"
"""The project of home-wide decisions: only a binding on every project ('*') reaches it."""


def _lines(platform: Platform, project: str, after: int, limit: int) -> Iterator[bytes]:
    with platform.read_session() as session:
        yield from export_records(session, project=project, after=after, limit=limit)


@router.read("/audit/records", action="audit.read")
async def records(
    who: CallerDep,
    project: Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,127}$")],
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> StreamingResponse:
    """A project's audit records as JSON lines (hashes included), in sequence order."""
    await who.authorize("audit.read", f"audit:{project}", project)
    lines = await run_in_threadpool(lambda: list(_lines(who.platform, project, after, limit)))
    return StreamingResponse(iter(lines), media_type="application/x-ndjson")


@router.read("/audit/verify", action="audit.read")
async def verify(who: CallerDep) -> dict[str, Any]:
    """Verify the whole chain against the signed checkpoints (home-wide auditors only)."""
    await who.authorize("audit.read", "audit:*", HOME_WIDE)
    report = await run_in_threadpool(functools.partial(verify_trail, who.platform))
    return report.to_json()


@router.write("POST", "/audit/checkpoints", action="audit.checkpoint", status_code=201)
async def checkpoint(who: CallerDep) -> Checkpoint:
    """Sign a checkpoint over every record so far; store it in the log and its copy
    (home-wide auditors)."""
    return await run_in_threadpool(create_checkpoint, who.in_project(HOME_WIDE), who.actor)
