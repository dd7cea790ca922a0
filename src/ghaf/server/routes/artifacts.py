"""Files through the control plane: upload one file (streamed, digest-checked), register
a model version or record a run's artifacts from uploaded files, list and download them.

The server holds the keys: files reach the encrypted artifact store and come back out of
it only through here. An upload is written to a scratch file of the home as it arrives
(hashed on the way, never held in memory) and stored only when it hashes to the digest
the client claimed. Files are downloaded per version of a readable model, never by bare
digest: a digest says nothing about which project may read the bytes.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from collections.abc import AsyncIterator, Generator
from typing import Annotated, Any, BinaryIO, cast

from fastapi import Depends, Header, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ghaf.errors import NotFoundError
from ghaf.platform import Platform
from ghaf.registry.uploads import (
    UPLOAD_ACTION,
    check_relpath,
    register_uploaded,
    require_uploaded,
    store_upload,
)
from ghaf.server.auth import Caller, caller
from ghaf.server.routes.registry import readable_version
from ghaf.server.routes.tracking import readable_run
from ghaf.server.routing import API_PREFIX, ActionRouter
from ghaf.server.streams import DIGEST_SIZE, TRAILING, BodyReader, TrailingDigest
from ghaf.tracking.service import artifact_files, record_artifacts

router = ActionRouter(tags=["artifacts"])
CallerDep = Annotated[Caller, Depends(caller)]
DIGEST_HEADER = "x-ghaf-sha256"
"""The SHA-256 (lowercase hex) of a file's bytes: claimed by an upload, sent with a download."""
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_SHA256 = r"^[0-9a-f]{64}$"
_CLAIM = rf"^([0-9a-f]{{64}}|{TRAILING})$"
MAX_FILES = 10_000
"""Files one version may be registered with."""
UPLOAD_PATH = re.compile(
    rf"^{re.escape(API_PREFIX)}/projects/[^/]+/(artifacts|uploads/[0-9a-f]{{32}})$"
)
"""Paths whose bodies are artifacts: the gateway holds them to their own limit."""
_BINARY = {"type": "string", "format": "binary"}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes (chunked transfer allowed).",
        "content": {"application/octet-stream": {"schema": _BINARY}},
    }
}
_FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes; its SHA-256 in the X-Ghaf-SHA256 header.",
        "content": {"application/octet-stream": {"schema": _BINARY}},
    }
}


class NewVersion(BaseModel):
    """A version to register from files uploaded to its project."""

    name: str = Field(min_length=1, max_length=256)
    project: str = Field(pattern=_PROJECT)
    files: dict[
        Annotated[str, Field(min_length=1, max_length=1024)],
        Annotated[str, Field(pattern=_SHA256)],
    ] = Field(
        min_length=1, max_length=MAX_FILES, description="Path in the model directory -> SHA-256."
    )
    description: str = Field(default="", max_length=100_000)
    lineage: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        default_factory=list, max_length=1000
    )
    run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    metrics: dict[Annotated[str, Field(max_length=250)], float] | None = Field(
        default=None, max_length=1000
    )


class RunFiles(BaseModel):
    """Files uploaded to a run's project, to record as the run's artifacts."""

    files: dict[
        Annotated[str, Field(min_length=1, max_length=1024)],
        Annotated[str, Field(pattern=_SHA256)],
    ] = Field(min_length=1, max_length=MAX_FILES, description="Artifact path -> SHA-256.")


@router.write(
    "POST",
    "/projects/{project}/artifacts",
    action=UPLOAD_ACTION,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
)
async def upload(
    project: Annotated[str, Path(pattern=_PROJECT)],
    sha256: Annotated[
        str,
        Header(
            alias=DIGEST_HEADER,
            pattern=_CLAIM,
            description="The file's SHA-256 in lowercase hex, or 'trailing': the body ends "
            "with it (64 bytes after the file's).",
        ),
    ],
    request: Request,
    who: CallerDep,
) -> dict[str, Any]:
    """Upload one file's bytes to a project; stored only when they hash to X-Ghaf-SHA256.

    With ``X-Ghaf-SHA256: trailing`` the body is the file's bytes followed by their
    SHA-256 in lowercase hex (64 bytes more), so a sender hashes the file as it sends it
    instead of reading it twice; the file is stored only when it hashes to that trailer.
    The body streams into the artifact store as it arrives (hashed and encrypted on the
    way, never staged whole on disk or in memory); the socket is read ahead of the store
    by a bounded amount, so receiving and storing overlap."""
    trailing = sha256 == TRAILING
    await who.authorize(UPLOAD_ACTION, f"artifact:{sha256}", project)
    reader = BodyReader(request, trailer=DIGEST_SIZE if trailing else 0)
    claim: str | TrailingDigest = TrailingDigest(reader) if trailing else sha256
    async with reader.receiving() as body:
        info = await run_in_threadpool(
            functools.partial(
                store_upload,
                who.in_project(project),
                who.actor,
                cast(BinaryIO, body),
                digest=claim,
                project=project,
            )
        )
    return {"digest": info.digest, "size": info.size}


@router.write("POST", "/models", action="model.register", status_code=201)
async def register(body: NewVersion, who: CallerDep) -> Any:
    """Register a version from files uploaded to its project (every check of embedded mode)."""
    await who.authorize("model.register", f"model:{body.name}", body.project)
    if body.run_id is not None:
        await readable_run(who, body.run_id, "run.read")
    return await run_in_threadpool(
        functools.partial(
            register_uploaded,
            who.in_project(body.project),
            who.actor,
            body.name,
            body.files,
            project=body.project,
            run_id=body.run_id,
            metrics=body.metrics,
            lineage=body.lineage,
            description=body.description,
        )
    )


@router.read("/models/{ref}/files", action="model.read")
async def files(ref: str, who: CallerDep) -> dict[str, Any]:
    """A version's files: path, SHA-256 and size of each (its seal included)."""
    version = await readable_version(who, ref)
    return {
        "name": version.name,
        "version": version.version,
        "project": version.project,
        "files": [
            {"path": path, "digest": entry["digest"], "size": entry["size"]}
            for path, entry in sorted(version.files.items())
        ],
    }


SEND = 1024 * 1024
"""Bytes per body message of a download: the server holds about one in flight (uvicorn
waits for the socket to drain below its high-water mark before the next)."""


def _chunks(platform: Platform, digest: str) -> Generator[bytes, None, None]:
    # The client checks the digest sent with the file (x-ghaf-sha256) end to end, and the
    # store's AEAD tags refuse any altered byte: hashing here too cost a fifth of the time.
    # read1: one read of the decrypted stream straight into the chunk sent (read would
    # copy it through the reader's buffer first).
    with platform.artifacts.open(digest, verify=False) as handle:
        read = getattr(handle, "read1", handle.read)
        while chunk := read(SEND):
            yield chunk


@router.read(
    "/models/{ref}/file",
    action="model.read",
    response_class=StreamingResponse,
    responses=_FILE_RESPONSE,
)
async def file(
    ref: str,
    path: Annotated[str, Query(min_length=1, max_length=1024)],
    who: CallerDep,
) -> StreamingResponse:
    """One file of a version, streamed (``path`` as ``/files`` lists it)."""
    version = await readable_version(who, ref)
    entry = version.files.get(path)
    if entry is None:
        raise NotFoundError(
            f"{version.ref} has no file {path!r}",
            hint=f"GET /api/v1/models/{version.ref}/files lists its files",
        )
    return _stream(who.platform, str(entry["digest"]), int(entry["size"]))


async def _read_ahead(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """``chunks`` (read and decrypted on a worker thread), each one read while the one
    before is sent: the event loop waits on the socket and the thread on the disk and the
    cipher at the same time, instead of taking turns."""
    inside = threading.Lock()  # held by the thread in the generator, and by its closing

    def advance() -> bytes | None:
        with inside:
            return next(chunks, None)

    ahead = asyncio.ensure_future(run_in_threadpool(advance))
    try:
        while (chunk := await ahead) is not None:
            ahead = asyncio.ensure_future(run_in_threadpool(advance))
            yield chunk
    finally:  # sent whole, failed, or the client went away
        # A cancelled read can look done while its thread is still in the generator
        # (closing it then raised "generator already executing"): wait for the thread
        # under the lock, at most one chunk's read, without awaiting in a cancelled scope.
        with inside:
            chunks.close()  # closes the file


def _stream(platform: Platform, digest: str, size: int) -> StreamingResponse:
    return StreamingResponse(
        _read_ahead(_chunks(platform, digest)),
        media_type="application/octet-stream",
        headers={DIGEST_HEADER: digest, "content-length": str(size)},
    )


@router.write("POST", "/runs/{run_id}/artifacts", action="run.log_artifacts", status_code=201)
async def log_run_artifacts(run_id: str, body: RunFiles, who: CallerDep) -> dict[str, Any]:
    """Record files uploaded to the run's project as its artifacts (a path logged again
    points at the new file)."""
    project = await readable_run(who, run_id, "run.read")
    for path in body.files:
        check_relpath(path)
    sizes = await run_in_threadpool(require_uploaded, who.platform, project, body.files)
    entries = {path: (digest, sizes[digest]) for path, digest in body.files.items()}
    await run_in_threadpool(record_artifacts, who.in_project(project), who.actor, run_id, entries)
    return {"run_id": run_id, "files": sorted(entries)}


@router.read("/runs/{run_id}/artifacts", action="run.read")
async def run_artifacts(run_id: str, who: CallerDep) -> dict[str, Any]:
    """A run's artifact files: path, SHA-256 and size of each."""
    await readable_run(who, run_id, "run.read")
    found = await run_in_threadpool(artifact_files, who.platform, run_id)
    return {
        "run_id": run_id,
        "files": [{"path": p, "digest": d, "size": n} for p, d, n in found],
    }


@router.read(
    "/runs/{run_id}/artifact",
    action="run.read",
    response_class=StreamingResponse,
    responses=_FILE_RESPONSE,
)
async def run_artifact(
    run_id: str,
    path: Annotated[str, Query(min_length=1, max_length=1024)],
    who: CallerDep,
) -> StreamingResponse:
    """One artifact file of a run, streamed (``path`` as ``/artifacts`` lists it)."""
    await readable_run(who, run_id, "run.read")
    found = await run_in_threadpool(artifact_files, who.platform, run_id, path)
    if not found:
        raise NotFoundError(
            f"run {run_id} has no artifact {path!r}",
            hint=f"GET /api/v1/runs/{run_id}/artifacts lists its files",
        )
    _, digest, size = found[0]
    return _stream(who.platform, digest, size)
