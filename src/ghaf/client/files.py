"""Files between a client machine and the server: upload, register a model or record a
run's artifacts, download.

Every file travels with its SHA-256: an upload claims it (the server stores the file only
if the bytes that arrived match), a download is checked against it before the file
appears under its name. Files stream from and to disk in chunks; nothing holds a whole
file in memory.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from ghaf.errors import (
    AlreadyExistsError,
    BackendUnavailableError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)

if TYPE_CHECKING:
    from ghaf.client.http import Client

DIGEST_HEADER = "x-ghaf-sha256"
TRAILING = "trailing"
"""The value of :data:`DIGEST_HEADER` on an upload whose body ends with the file's digest."""
DIGEST_SIZE = 64
"""Bytes of a SHA-256 in lowercase hex."""
CHUNK = 1024 * 1024
"""Bytes read from or written to disk at a time."""
PIECE = 256 * 1024 * 1024
"""Bytes per request of a resumable upload: what a failure can cost to send again."""
RESUME_TRIES = 8
"""Failed pieces in a row a resumable upload survives before it gives up."""
OFFSET_HEADER = "x-ghaf-offset"
SAVE_DEPTH = 4
"""Received batches of a download that may wait to be hashed and written."""


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def use_direct(client: Client, direct: bool) -> bool:
    """Whether to move bytes through presigned URLs: asked for, and the server offers them
    (its artifacts are on S3); otherwise the streamed routes, which always work."""
    if not direct:
        return False
    from ghaf.client.direct import offers_presigned  # cryptography: only on the direct path

    return offers_presigned(client)


def upload_file(client: Client, path: Path, project: str, *, direct: bool = False) -> str:
    """Send ``path`` to ``project``; its SHA-256 as the server stored it.

    With ``direct`` (and a server that offers it) the file goes encrypted straight to the
    bucket through a presigned URL (:func:`~ghaf.client.direct.upload_granted`). Else a
    file of :attr:`Client.resumable_above` bytes or more goes in resumable pieces
    (:func:`_upload_in_pieces`); a smaller one in one streamed request, hashed as it is
    sent (its digest follows its bytes: one read of the file, not two).
    """
    return _upload(client, path, project, use_direct(client, direct))


class _HashedBody:
    """One pass over a file as the body of ``X-Ghaf-SHA256: trailing``: its ``size`` bytes,
    hashed as they are sent, then their SHA-256 in hex. The digest is sent only if the
    file kept its size and modification time meanwhile; otherwise the body stops short,
    and a server stores nothing of a body that ends early."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.digest: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        with self.path.open("rb", buffering=0) as handle:
            before = os.fstat(handle.fileno())
            left = self.size
            while left:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    break
                hasher.update(chunk)
                left -= len(chunk)
                yield chunk
            after = os.fstat(handle.fileno())
        if left or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise InvalidInputError(
                f"{self.path} changed while it was being uploaded; nothing was stored",
                hint="upload it again once nothing is writing to it",
            )
        self.digest = hasher.hexdigest()
        yield self.digest.encode()


def _upload_streamed(client: Client, path: Path, project: str, size: int) -> tuple[str, str]:
    """Send ``path`` in one request, its digest after its bytes; (the digest the server
    stored it as, the digest of the bytes sent)."""
    bodies: list[_HashedBody] = []

    def body() -> Iterator[bytes]:  # a fresh pass for each try
        bodies.append(_HashedBody(path, size))
        return iter(bodies[-1])

    headers = {
        "content-type": "application/octet-stream",
        "content-length": str(size + DIGEST_SIZE),
        DIGEST_HEADER: TRAILING,
    }
    response = client.send("POST", f"/projects/{project}/artifacts", content=body, headers=headers)
    sent = bodies[-1].digest
    if sent is None:  # pragma: no cover - the server answered before the body ended
        raise IntegrityError(
            f"the server stored {path} before it had received its digest",
            hint="check what sits between you and the server",
        )
    return str(response.json()["digest"]), sent


def _upload(client: Client, path: Path, project: str, direct: bool) -> str:
    size = path.stat().st_size
    if direct and size > 0:
        from ghaf.client.direct import upload_granted

        digest = file_digest(path)
        stored = upload_granted(client, path, project, digest, size)
    elif size >= client.resumable_above:
        # The digest goes first: a server that holds the file already is not sent it.
        digest = file_digest(path)
        stored = _upload_in_pieces(client, path, project, digest, size)
    else:
        stored, digest = _upload_streamed(client, path, project, size)
    if stored != digest:  # the server would have refused; a proxy in between might not
        raise IntegrityError(
            f"{path} was stored as sha256 {stored}, not {digest}",
            hint="send it again; if it persists, check what sits between you and the server",
        )
    return stored


def _piece(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(offset)
        while length > 0 and (chunk := handle.read(min(CHUNK, length))):
            length -= len(chunk)
            yield chunk


def _upload_in_pieces(client: Client, path: Path, project: str, digest: str, size: int) -> str:
    """Send ``path`` as a resumable upload: pieces of :data:`PIECE` bytes, each at the
    offset the server has; after a failed piece, ask the server where to resume. A file
    the project holds already is not sent again."""
    opened = client.post(f"/projects/{project}/uploads", {"sha256": digest, "size": size})
    if opened["stored"]:
        return str(opened["digest"])
    upload = f"/projects/{project}/uploads/{opened['upload_id']}"
    offset = 0
    failures = 0
    while offset < size:
        length = min(PIECE, size - offset)
        headers = {
            "content-type": "application/octet-stream",
            "content-length": str(length),
            OFFSET_HEADER: str(offset),
        }
        try:
            answer = client.send(
                "PUT",
                upload,
                content=functools.partial(_piece, path, offset, length),
                headers=headers,
            )
        except (BackendUnavailableError, AlreadyExistsError):
            failures += 1
            if failures > RESUME_TRIES:
                raise
            offset = int(client.get(upload)["offset"])  # where the server's copy ends
            continue
        offset = int(answer.json()["offset"])
        failures = 0
    return str(client.request("POST", upload + "/complete")["digest"])


def model_files(directory: Path) -> dict[str, Path]:
    """Path in the model directory -> file, for every regular file under ``directory``.

    Raises:
        InvalidInputError: ``directory`` is not a directory, or holds a symlink or a
            special file (naming it): what a registration stores must be the bytes
            that are there.
    """
    if directory.is_symlink() or not directory.is_dir():
        raise InvalidInputError(
            f"{directory} is not a model directory",
            hint="pass the directory ghaf.save_model wrote (a symlink to one is refused)",
        )
    found: dict[str, Path] = {}
    for root, dirs, names in os.walk(directory):
        for name in sorted(dirs + names):
            path = Path(root) / name
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
                raise InvalidInputError(
                    f"{path} is {kind}; a model directory holds regular files only",
                    hint="copy the file it stands for into the directory, then register again",
                )
            found[path.relative_to(directory).as_posix()] = path
    return found


def register_model(
    client: Client,
    name: str,
    directory: Path,
    *,
    project: str,
    description: str,
    lineage: list[str],
    run_id: str | None,
    metrics: dict[str, float] | None,
    direct: bool = False,
) -> dict[str, Any]:
    """Upload each file of ``directory`` to ``project`` (through presigned URLs with
    ``direct``, when offered), then register them as ``name``."""
    direct = use_direct(client, direct)
    files = {
        relative: _upload(client, path, project, direct)
        for relative, path in model_files(directory).items()
    }
    body: dict[str, Any] = {
        "name": name,
        "project": project,
        "files": files,
        "description": description,
        "lineage": lineage,
    }
    if run_id is not None:
        body["run_id"] = run_id
    if metrics is not None:
        body["metrics"] = metrics
    return dict(client.post("/models", body))


def _target(dest: Path, relative: str) -> Path:
    """Where ``relative`` (a path the server listed) goes under ``dest``; never outside it."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(
            f"the server listed a file path {relative!r} outside its directory",
            hint="the server or something in between is not to be trusted; report it",
        )
    return dest.joinpath(*parts)


def _save(pieces: Iterator[bytes], out: BinaryIO, hasher: Any) -> None:
    """Hash and write ``pieces`` while this thread receives the next ones: they are copied
    into batches of :data:`CHUNK` bytes, each hashed on one helper thread and written on
    another (both release the GIL). Up to :data:`SAVE_DEPTH` batches wait their turn, so
    a write the kernel holds back for a moment does not stop the download.

    The batches are a ring of buffers allocated once, reused as soon as both threads are
    done with one. Hashing beside writing, rather than before it on one thread, took a
    loaded two-core box from 11 s to 5 s for 1 GiB (medians of four)."""
    ring = [memoryview(bytearray(CHUNK)) for _ in range(SAVE_DEPTH + 1)]
    using: list[tuple[Future[Any], Future[Any]] | None] = [None] * len(ring)
    hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghaf-hash")
    writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghaf-save")

    def hand_over(index: int, view: memoryview) -> None:
        using[index] = (hashing.submit(hasher.update, view), writing.submit(out.write, view))

    def wait(index: int) -> None:
        pending, using[index] = using[index], None
        if pending is not None:
            pending[0].result()
            pending[1].result()

    turn = 0
    filled = 0
    try:
        for piece in pieces:
            data = memoryview(piece)
            while data:
                buffer = ring[turn % len(ring)]
                take = min(len(data), CHUNK - filled)
                buffer[filled : filled + take] = data[:take]
                data = data[take:]
                filled += take
                if filled == CHUNK:
                    hand_over(turn % len(ring), buffer)
                    turn += 1
                    wait(turn % len(ring))  # the next buffer is free once saved
                    filled = 0
        if filled:
            hand_over(turn % len(ring), ring[turn % len(ring)][:filled])
        for index in range(len(ring)):
            wait(index)
    finally:
        for pending in using:
            for future in pending or ():
                future.cancel()
        hashing.shutdown(wait=True)
        writing.shutdown(wait=True)


def _download(
    client: Client,
    path: str,
    params: dict[str, str],
    digest: str,
    target: Path,
    what: str,
    grant: str | None = None,
) -> None:
    """Stream ``GET path`` into ``target``, renamed into place once it hashes to ``digest``;
    with ``grant``, fetch the presigned URL ``GET grant`` answers instead."""
    if grant is not None:
        from ghaf.client.direct import download_granted

        download_granted(client.get(grant, **params), digest, target, what)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    partial = Path(name)
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            response = client.send("GET", path, params=params, stream=True)
            try:
                _save(response.iter_bytes(), out, hasher)
            finally:
                response.close()
        if hasher.hexdigest() != digest or response.headers.get(DIGEST_HEADER) != digest:
            raise IntegrityError(
                f"{what} arrived with sha256 {hasher.hexdigest()}, the server lists {digest}",
                hint="download it again; nothing was written under its name",
            )
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def download_model(client: Client, ref: str, dest: Path, *, direct: bool = False) -> Path:
    """Fetch every file of the version ``ref`` names into ``dest``; returns ``dest``.

    With ``direct`` (and a server that offers it) each file comes from the bucket
    through a presigned URL and is decrypted here. The version is pinned first (an
    alias that moves meanwhile does not mix versions).
    Each file is written beside its target and renamed once its SHA-256 is the
    registry's, so a file under its own name is always complete and verified.
    """
    listing = client.get(f"/models/{ref}/files")
    pinned = f"{listing['name']}:{listing['version']}"
    grant = f"/models/{pinned}/file-grant" if use_direct(client, direct) else None
    dest.mkdir(parents=True, exist_ok=True)
    for entry in listing["files"]:
        relative = str(entry["path"])
        target = _target(dest, relative)
        _download(
            client,
            f"/models/{pinned}/file",
            {"path": relative},
            str(entry["digest"]),
            target,
            f"{relative} of {pinned}",
            grant,
        )
    return dest


def artifact_paths(source: Path, artifact_path: str | None) -> dict[str, Path]:
    """Artifact path -> file for ``source`` (a file, or a directory's regular files under
    ``artifact_path`` or its own name), as embedded mode's ``Run.log_artifact`` names them.

    Raises:
        InvalidInputError: ``source`` does not exist, or a directory holds a symlink or a
            special file.
    """
    if source.is_dir():
        prefix = (artifact_path or source.name).strip("/")
        return {f"{prefix}/{rel}": path for rel, path in model_files(source).items()}
    if source.is_file():
        name = source.name if artifact_path is None else f"{artifact_path.strip('/')}/{source.name}"
        return {name: source}
    raise InvalidInputError(f"artifact {source} does not exist", hint="check the path")


def log_artifacts(
    client: Client, run_id: str, project: str, files: dict[str, Path], *, direct: bool = False
) -> list[str]:
    """Upload each file to ``project`` and record them as the run's artifacts."""
    direct = use_direct(client, direct)
    digests = {path: _upload(client, file, project, direct) for path, file in files.items()}
    recorded = client.post(f"/runs/{run_id}/artifacts", {"files": digests})
    return [str(path) for path in recorded["files"]]


def download_run_artifacts(
    client: Client, run_id: str, path: str, dest: Path, *, direct: bool = False
) -> Path:
    """Fetch a run's artifact file, or every file under directory ``path``, into ``dest``
    (each verified before it appears under its name); the local path of ``path``."""
    prefix = path.strip("/")
    listing = client.get(f"/runs/{run_id}/artifacts")["files"]
    exact = [e for e in listing if e["path"] == prefix]
    chosen = exact or [e for e in listing if str(e["path"]).startswith(prefix + "/")]
    if not chosen:
        raise NotFoundError(
            f"run {run_id} has no artifact {path!r}", hint=f"ghaf runs show {run_id}"
        )
    grant = f"/runs/{run_id}/artifact-grant" if use_direct(client, direct) else None
    for entry in chosen:
        relative = str(entry["path"])
        target = (
            dest / PurePosixPath(relative).name
            if exact
            else _target(dest, relative[len(prefix) + 1 :])
        )
        _download(
            client,
            f"/runs/{run_id}/artifact",
            {"path": relative},
            str(entry["digest"]),
            target,
            f"artifact {relative} of run {run_id}",
            grant,
        )
    return dest / PurePosixPath(prefix).name if exact else dest
