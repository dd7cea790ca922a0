"""Model files that arrive over the wire: stored once their digest checks, registered from
the artifact store.

A remote client sends each file of a model directory on its own (the control plane
streams it into the artifact store as it arrives), then asks for a version made of those
files. :func:`store_upload` keeps a file only when the bytes that arrived hash to the
SHA-256 the sender claimed; :func:`register_uploaded` rebuilds the directory from the
store and registers it exactly as embedded mode does (:func:`~ghaf.registry.register_model`:
signature, flavor allow-list, pickle scan, residency, release manifest).

A file counts as uploaded to a project only when an allowed ``model.upload`` of its
digest in that project is on the audit trail, so a digest learnt or guessed elsewhere
never pulls another project's bytes into a version someone can then download.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import orjson
from sqlalchemy import select

from ghaf.artifacts.base import CHUNK_SIZE, ArtifactInfo, LateClaim
from ghaf.artifacts.scratch import scratch_dir
from ghaf.errors import GhafError, InvalidInputError, NotFoundError, name_taken
from ghaf.platform import Platform
from ghaf.registry.base import ModelVersion, check_name
from ghaf.registry.service import get_model_version, register_model
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, governed

UPLOAD_ACTION = "model.upload"
_LOOKUP_BATCH = 500
"""Digests looked up on the audit trail per query."""


@governed(UPLOAD_ACTION, resource="artifact:{digest}")
def store_upload(
    platform: Platform,
    actor: Actor,
    source: BinaryIO | Path,
    *,
    digest: str | LateClaim,
    project: str,
) -> ArtifactInfo:
    """Put a file arriving for ``project`` in the artifact store, if it is what was sent.

    Args:
        source: the bytes as they arrive (a request body's stream, or a staged file).
        digest: the SHA-256 the sender claimed for them, or the claim that follows them.
        project: the project the file is uploaded to.

    Raises:
        IntegrityError: the bytes hash to something else; nothing is stored (audited as
            failed).
        InvalidInputError: a claim that follows the bytes is missing or malformed.
    """
    info = platform.artifacts.put(source, expected=digest)
    operation = current_operation()
    operation.details["size"] = info.size
    if not isinstance(digest, str):  # the claim followed the bytes: known only now
        operation.resource = f"artifact:{info.digest}"
    return info


def check_relpath(relpath: str) -> str:
    """``relpath`` when it is a plain path inside a model or run directory (``a/b.bin``).

    Raises:
        InvalidInputError: absolute, with a ``..``, ``.`` or empty part, a backslash, a
            control or format character (a right-to-left override disguises a name), or a
            part that starts or ends with a space, naming the path.
    """
    parts = relpath.split("/")
    if relpath.startswith("/") or ".." in parts:
        raise InvalidInputError(
            f"file path {relpath!r} escapes its directory",
            hint="send paths relative to the directory, e.g. 'model.skops' or 'data/x.bin'",
        )
    if (
        any(part in ("", ".") or part != part.strip() for part in parts)
        or "\\" in relpath
        or any(unicodedata.category(char) in ("Cc", "Cf") for char in relpath)
    ):
        raise InvalidInputError(
            f"file path {relpath!r} is not a plain relative path",
            hint="separate parts with '/', with no empty or '.' part, no backslash, no "
            "control or format character and no space at either end of a part",
        )
    return relpath


def _check_layout(paths: Iterable[str]) -> None:
    files = set(paths)
    for path in sorted(files):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in files:
                raise InvalidInputError(
                    f"file path {parent!r} is also the directory of {path!r}",
                    hint="send each file once, under the path it has in the model directory",
                )


def uploaded_to(platform: Platform, project: str, digests: Iterable[str]) -> dict[str, int | None]:
    """The digests among ``digests`` that were uploaded to ``project`` (and stored), with
    each one's size in bytes as the upload recorded it (None for an upload recorded before
    sizes were)."""
    wanted = sorted({f"artifact:{d}" for d in digests})
    found: dict[str, int | None] = {}
    with platform.read_session() as session:
        for start in range(0, len(wanted), _LOOKUP_BATCH):
            batch = wanted[start : start + _LOOKUP_BATCH]
            rows = session.execute(
                select(AuditRecordRow.resource, AuditRecordRow.details).where(
                    AuditRecordRow.action == UPLOAD_ACTION,
                    AuditRecordRow.outcome == "allowed",
                    AuditRecordRow.project == project,
                    AuditRecordRow.resource.in_(batch),
                )
            )
            for resource, details in rows:
                size = orjson.loads(details).get("size") if details else None
                digest = resource.removeprefix("artifact:")
                if found.get(digest) is None:
                    found[digest] = size if isinstance(size, int) else None
    return found


def require_uploaded(platform: Platform, project: str, files: Mapping[str, str]) -> dict[str, int]:
    """Each digest of ``files`` (path -> SHA-256) with its size, once every one was
    uploaded to ``project``.

    Raises:
        NotFoundError: naming the first path whose digest was not uploaded there.
    """
    found = uploaded_to(platform, project, files.values())
    missing = set(files.values()) - set(found)
    if missing:
        path = min(p for p, d in files.items() if d in missing)
        raise NotFoundError(
            f"file {path!r} (sha256 {files[path]}) was not uploaded to project {project!r}",
            hint=f"upload it first: POST /api/v1/projects/{project}/artifacts",
        )
    return {
        digest: _size(platform, digest) if size is None else size for digest, size in found.items()
    }


def _size(platform: Platform, digest: str) -> int:
    """The size of a stored artifact, counted (for uploads recorded without one)."""
    total = 0
    with platform.artifacts.open(digest) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            total += len(chunk)
    return total


def _check_model_project(platform: Platform, name: str, project: str) -> None:
    try:
        current = get_model_version(platform, name)
    except NotFoundError:
        return
    if current.project != project:
        raise name_taken("model", name)


def register_uploaded(
    platform: Platform,
    actor: Actor,
    name: str,
    files: Mapping[str, str],
    *,
    project: str,
    run_id: str | None = None,
    metrics: dict[str, float] | None = None,
    lineage: Sequence[str] = (),
    description: str = "",
) -> ModelVersion:
    """Register a version of ``name`` in ``project`` from files uploaded to that project.

    ``files`` maps each path of the model directory to the SHA-256 of its bytes. The
    directory is rebuilt in a scratch directory of the home (each file verified as it is
    copied out of the store) and registered by :func:`~ghaf.registry.register_model`.

    Raises:
        InvalidInputError: no files, or a path escapes the directory or is not plain
            (naming it).
        NotFoundError: a digest was not uploaded to ``project``.
        AlreadyExistsError: ``name`` is a model of another project.
    """
    check_name(name)
    if not files:
        raise InvalidInputError(
            f"no files to register as {name!r}", hint="send the model directory's files"
        )
    for relpath in files:
        check_relpath(relpath)
    _check_layout(files)
    require_uploaded(platform, project, files)
    _check_model_project(platform, name, project)
    in_project = platform.in_project(project)
    with scratch_dir(platform.settings.home, "uploaded-") as workdir:
        directory = workdir / name
        for relpath, digest in sorted(files.items()):
            platform.artifacts.get(digest, directory / relpath)
        try:
            return register_model(
                in_project,
                actor,
                name,
                directory,
                run_id=run_id,
                metrics=metrics,
                lineage=lineage,
                description=description,
                project=project,
                source_label=f"run:{run_id}" if run_id else "upload",
            )
        except GhafError as exc:  # the scratch path is the server's business, not the caller's
            exc.headline = exc.headline.replace(f"{workdir}/", "")
            exc.args = tuple(str(a).replace(f"{workdir}/", "") for a in exc.args)
            raise
