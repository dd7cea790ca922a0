"""Resumable uploads: open a session for a file, send it in pieces at stated offsets
(resuming from the offset the server has after any failure), complete it to store it.

Every step is the opening principal's alone; the file is stored (``model.upload``,
audited) only when it is whole and hashes to the SHA-256 claimed when it was opened, and
then counts as uploaded to the project exactly like a one-request upload.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.artifacts.upload_sessions import (
    appending,
    close_session,
    complete_check,
    data_path,
    load_session,
    open_session,
)
from ghaf.errors import IntegrityError, RequestTooLargeError
from ghaf.registry.uploads import UPLOAD_ACTION, store_upload, uploaded_to
from ghaf.server.auth import Caller, caller
from ghaf.server.routing import ActionRouter
from ghaf.server.streams import append_body

router = ActionRouter(tags=["artifacts"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_SHA256 = r"^[0-9a-f]{64}$"
_ID = r"^[0-9a-f]{32}$"
OFFSET_HEADER = "x-ghaf-offset"
"""Where a piece starts in the file: the offset the server last reported."""
_PIECE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The next piece of the file's bytes (chunked transfer allowed).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
ProjectPath = Annotated[str, Path(pattern=_PROJECT)]
UploadPath = Annotated[str, Path(pattern=_ID)]


class NewUpload(BaseModel):
    """The file to come: what its bytes must hash to, and how many there are."""

    sha256: str = Field(pattern=_SHA256)
    size: int = Field(ge=1, le=1 << 50)


@router.write("POST", "/projects/{project}/uploads", action=UPLOAD_ACTION, status_code=201)
async def open_upload(
    project: ProjectPath, body: NewUpload, request: Request, who: CallerDep
) -> dict[str, Any]:
    """Open a session for one file (no larger than the server's artifact limit);
    ``stored: true`` (and no session) when the project holds that file already, so
    nothing needs sending."""
    await who.authorize(UPLOAD_ACTION, f"artifact:{body.sha256}", project)
    limit: int = request.app.state.max_artifact_bytes
    if body.size > limit:
        raise RequestTooLargeError(
            f"a file of {body.size} bytes is over this server's artifact limit ({limit})",
            hint="ask the operator to raise ghaf server --max-artifact-gb",
        )
    known = await run_in_threadpool(uploaded_to, who.platform, project, [body.sha256])
    if body.sha256 in known:
        return {"stored": True, "digest": body.sha256, "project": project}
    session = await run_in_threadpool(
        open_session, who.platform.settings.home, who.actor.name, project, body.sha256, body.size
    )
    return {"stored": False, **session.to_json(0)}


@router.own("/projects/{project}/uploads/{upload_id}")
async def upload_state(project: ProjectPath, upload_id: UploadPath, who: CallerDep) -> Any:
    """The caller's session: its size, claim, and the offset to resume from."""
    session, offset = await run_in_threadpool(
        load_session, who.platform.settings.home, upload_id, who.actor.name, project
    )
    return session.to_json(offset)


@router.write(
    "PUT",
    "/projects/{project}/uploads/{upload_id}",
    action=UPLOAD_ACTION,
    openapi_extra=_PIECE_BODY,
)
async def append_piece(
    project: ProjectPath,
    upload_id: UploadPath,
    offset: Annotated[int, Header(alias=OFFSET_HEADER, ge=0)],
    request: Request,
    who: CallerDep,
) -> dict[str, Any]:
    """Append the next piece at ``X-Ghaf-Offset`` (which must be where the file ends)."""
    home = who.platform.settings.home
    session, _ = await run_in_threadpool(load_session, home, upload_id, who.actor.name, project)
    await who.authorize(UPLOAD_ACTION, f"artifact:{session.sha256}", session.project)
    with appending(home, session, offset) as (room, data):
        written = await append_body(request, data, room)
    return session.to_json(offset + written)


@router.write(
    "POST",
    "/projects/{project}/uploads/{upload_id}/complete",
    action=UPLOAD_ACTION,
    status_code=201,
)
async def complete_upload(
    project: ProjectPath, upload_id: UploadPath, who: CallerDep
) -> dict[str, Any]:
    """Store the whole file if it hashes to the claim. The session ends once stored, or
    when the bytes hash to something else (they are not the file); after any other
    failure (a backend down) it stays, to complete again."""
    home = who.platform.settings.home
    session, offset = await run_in_threadpool(
        load_session, home, upload_id, who.actor.name, project
    )
    complete_check(session, offset)
    try:
        info = await run_in_threadpool(
            functools.partial(
                store_upload,
                who.in_project(session.project),
                who.actor,
                data_path(home, session),
                digest=session.sha256,
                project=session.project,
            )
        )
    except IntegrityError:
        await run_in_threadpool(close_session, home, session)
        raise
    await run_in_threadpool(close_session, home, session)
    return {"digest": info.digest, "size": info.size}


@router.write("DELETE", "/projects/{project}/uploads/{upload_id}", action=UPLOAD_ACTION)
async def abandon_upload(
    project: ProjectPath, upload_id: UploadPath, who: CallerDep
) -> dict[str, Any]:
    """Drop a session and the bytes it holds."""
    home = who.platform.settings.home
    session, _ = await run_in_threadpool(load_session, home, upload_id, who.actor.name, project)
    await run_in_threadpool(close_session, home, session)
    return {"upload_id": upload_id, "deleted": True}
