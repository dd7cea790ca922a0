"""Presigned URLs for one artifact when artifacts are on S3: the client moves the
(encrypted) bytes straight to or from the bucket, the server hands out one artifact's
data key and verifies every upload before it counts.

A download grant is asked for per file of a readable model version or run, exactly as
the streamed download is (never by bare digest), and is audited. An upload grant is
committed once the client has PUT the encrypted file; the server decrypts and hashes it
first. A file larger than one part (``server.presigned_part_mib``) goes in parts: the
grant carries the first part URLs, ``/upload-grants/parts`` hands out more (or fresh
ones for a part sent again), the commit completes the multipart upload before it
verifies, and ``/upload-grants/abort`` drops an upload given up. A server whose
artifacts are local files answers 400 (presigned-urls-unavailable) naming the streamed
route, which always works.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.errors import NotFoundError, RequestTooLargeError
from ghaf.registry.grants import (
    abort_granted_upload,
    commit_granted_upload,
    grant_download,
    grant_upload,
    granted_part_urls,
    open_upload_grant,
    presigned_offer,
)
from ghaf.registry.uploads import UPLOAD_ACTION, uploaded_to
from ghaf.server.auth import Caller, caller
from ghaf.server.routes.registry import readable_version
from ghaf.server.routes.tracking import readable_run
from ghaf.server.routing import ActionRouter
from ghaf.tracking.service import artifact_files

router = ActionRouter(tags=["artifacts"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_SHA256 = r"^[0-9a-f]{64}$"
ProjectPath = Annotated[str, Path(pattern=_PROJECT)]
FilePath = Annotated[str, Query(min_length=1, max_length=1024)]


class UploadGrantRequest(BaseModel):
    """The file to come: what its bytes hash to, and how many there are."""

    sha256: str = Field(pattern=_SHA256)
    size: int = Field(ge=1, le=1 << 50)
    parts: bool = Field(
        default=False,
        description="The client sends a file larger than one part in parts (an S3 "
        "multipart upload); without it, one PUT of at most 5 GiB.",
    )


class GrantCommit(BaseModel):
    """The sealed grant an upload-grant answer carried."""

    grant: str = Field(min_length=1, max_length=4096)


class PartsRequest(BaseModel):
    """The sealed grant of an upload in parts, and the parts to sign URLs for."""

    grant: str = Field(min_length=1, max_length=4096)
    parts: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(min_length=1, max_length=100)


@router.own("/artifact-access")
async def artifact_access(who: CallerDep) -> dict[str, Any]:
    """How this server moves artifact bytes: streamed always, presigned URLs when its
    artifacts are on S3 (and for how many seconds a URL lives)."""
    return await run_in_threadpool(presigned_offer, who.platform)


@router.read("/models/{ref}/file-grant", action="model.read")
async def model_file_grant(ref: str, path: FilePath, who: CallerDep) -> dict[str, Any]:
    """A presigned GET of one file of a version (``path`` as ``/files`` lists it), with
    that file's data key: decrypt it locally and check its SHA-256."""
    version = await readable_version(who, ref)
    entry = version.files.get(path)
    if entry is None:
        raise NotFoundError(
            f"{version.ref} has no file {path!r}",
            hint=f"GET /api/v1/models/{version.ref}/files lists its files",
        )
    return await run_in_threadpool(
        functools.partial(
            grant_download,
            who.in_project(version.project),
            who.actor,
            str(entry["digest"]),
            action="model.read",
            resource=f"model:{version.name}",
            project=version.project,
            path=path,
        )
    )


@router.read("/runs/{run_id}/artifact-grant", action="run.read")
async def run_artifact_grant(run_id: str, path: FilePath, who: CallerDep) -> dict[str, Any]:
    """A presigned GET of one artifact file of a run, with that file's data key."""
    project = await readable_run(who, run_id, "run.read")
    found = await run_in_threadpool(artifact_files, who.platform, run_id, path)
    if not found:
        raise NotFoundError(
            f"run {run_id} has no artifact {path!r}",
            hint=f"GET /api/v1/runs/{run_id}/artifacts lists its files",
        )
    _, digest, _ = found[0]
    return await run_in_threadpool(
        functools.partial(
            grant_download,
            who.in_project(project),
            who.actor,
            digest,
            action="run.read",
            resource=f"run:{run_id}",
            project=project,
            path=path,
        )
    )


@router.write("POST", "/projects/{project}/upload-grants", action=UPLOAD_ACTION, status_code=201)
async def upload_grant(
    project: ProjectPath, body: UploadGrantRequest, request: Request, who: CallerDep
) -> dict[str, Any]:
    """A presigned PUT for one file, the data key to encrypt it with (C2SP chunked
    AES-256-GCM under ``context``) and the grant to commit it with; ``stored: true``
    (and no grant) when the project holds that file already. With ``parts: true``, a
    file larger than one part gets ``method: multipart``: its part layout and first
    part URLs instead of one URL."""
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
    grant = await run_in_threadpool(
        functools.partial(
            grant_upload,
            who.in_project(project),
            who.actor,
            project=project,
            digest=body.sha256,
            size=body.size,
            in_parts=body.parts,
        )
    )
    return {"stored": False, "project": project, **grant}


@router.write(
    "POST", "/projects/{project}/upload-grants/commit", action=UPLOAD_ACTION, status_code=201
)
async def commit_upload_grant(
    project: ProjectPath, body: GrantCommit, who: CallerDep
) -> dict[str, Any]:
    """Store the file PUT for a grant once it decrypts to the announced SHA-256 (the
    server reads it back whole); a body that does not is deleted and nothing counts. A
    grant in parts is completed first: with parts missing the answer is 400 naming
    them, and the upload stays open to send them. Sent again, it answers the same."""
    info = await run_in_threadpool(
        functools.partial(
            commit_granted_upload,
            who.in_project(project),
            who.actor,
            body.grant,
            project=project,
        )
    )
    return {"digest": info.digest, "size": info.size}


@router.write("POST", "/projects/{project}/upload-grants/parts", action=UPLOAD_ACTION)
async def upload_grant_parts(
    project: ProjectPath, body: PartsRequest, who: CallerDep
) -> dict[str, Any]:
    """Fresh presigned URLs for parts of an upload grant in parts (at most 100 at once):
    the parts after the grant's first ones, or one to send again once its URL expired.
    Only the caller the grant was made for, while they may still upload the file."""
    terms = await run_in_threadpool(
        functools.partial(
            open_upload_grant, who.in_project(project), who.actor, body.grant, project=project
        )
    )
    await who.authorize(UPLOAD_ACTION, f"artifact:{terms.digest}", project)
    return await run_in_threadpool(
        granted_part_urls, who.in_project(project), terms, list(body.parts)
    )


@router.write("POST", "/projects/{project}/upload-grants/abort", action=UPLOAD_ACTION)
async def abort_upload_grant(
    project: ProjectPath, body: GrantCommit, who: CallerDep
) -> dict[str, Any]:
    """Drop what was sent for an upload grant not committed (its parts, or its object):
    an upload given up costs no storage until ``ghaf gc``."""
    terms = await run_in_threadpool(
        functools.partial(
            open_upload_grant, who.in_project(project), who.actor, body.grant, project=project
        )
    )
    await run_in_threadpool(abort_granted_upload, who.in_project(project), terms)
    return {"grant_id": terms.grant_id, "aborted": True}
