"""Resumable uploads: a file sent in pieces, over as many requests (and server restarts)
as it takes, then stored in one pass once every byte is there.

A session lives in ``<home>/uploads/<id>/`` (``meta.json`` and the bytes so far), owned
by the principal who opened it: only they can append to it, see it or complete it. Each
piece is appended at the offset the client names, which must be where the file ends (so
a retried piece is never written twice); the session's lock lets one request write at a
time. Completing streams the file into the artifact store, which keeps it only if it
hashes to the SHA-256 claimed when the session was opened. ``ghaf gc`` removes sessions
nobody has touched for :data:`SESSION_TTL_S`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError

UPLOADS_DIR = "uploads"
SESSION_TTL_S = 24 * 3600.0
"""Seconds an untouched session is kept before ``ghaf gc`` removes it."""
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class UploadSession:
    """An open upload: who opened it, for which project, what it must hash to."""

    upload_id: str
    principal: str
    project: str
    sha256: str
    size: int
    created: float

    def to_json(self, offset: int) -> dict[str, object]:
        return {
            "upload_id": self.upload_id,
            "project": self.project,
            "sha256": self.sha256,
            "size": self.size,
            "offset": offset,
        }


def uploads_root(home: Path) -> Path:
    return home / UPLOADS_DIR


def _directory(home: Path, upload_id: str) -> Path:
    if not _ID.match(upload_id):
        raise NotFoundError(f"upload {upload_id!r} does not exist", hint="open a new upload")
    return uploads_root(home) / upload_id


def open_session(home: Path, principal: str, project: str, sha256: str, size: int) -> UploadSession:
    """Start a session (0700 directory, empty data file)."""
    session = UploadSession(secrets.token_hex(16), principal, project, sha256, size, time.time())
    root = uploads_root(home)
    root.mkdir(mode=0o700, exist_ok=True)
    directory = root / session.upload_id
    directory.mkdir(mode=0o700)
    (directory / "data").touch(mode=0o600)
    (directory / "meta.json").write_bytes(orjson.dumps(asdict(session)))
    return session


def load_session(
    home: Path, upload_id: str, principal: str, project: str
) -> tuple[UploadSession, int]:
    """The caller's session ``upload_id`` for ``project`` and its offset (bytes received
    so far).

    Raises:
        NotFoundError: no such session, or another principal's or project's (which reads
            the same).
    """
    directory = _directory(home, upload_id)
    try:
        session = UploadSession(**orjson.loads((directory / "meta.json").read_bytes()))
        offset = (directory / "data").stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        session = None
    if session is None or (session.principal, session.project) != (principal, project):
        raise NotFoundError(
            f"upload {upload_id} does not exist (or expired)",
            hint=f"open a new upload: POST /api/v1/projects/{project}/uploads",
        )
    return session, offset


@contextlib.contextmanager
def appending(home: Path, session: UploadSession, offset: int) -> Iterator[tuple[int, Path]]:
    """Hold the session's lock to append at ``offset``; yields (bytes that may still
    come, the data file). On failure the file is cut back to ``offset``.

    Raises:
        AlreadyExistsError: another request is writing to it now, or ``offset`` is not
            where the file ends (the problem names the offset to resume from).
    """
    data = _directory(home, session.upload_id) / "data"
    fd = os.open(data, os.O_WRONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AlreadyExistsError(
                f"another request is writing upload {session.upload_id} now",
                hint="send one piece at a time; GET the upload for its offset",
            ) from exc
        current = os.fstat(fd).st_size
        if offset != current:
            raise AlreadyExistsError(
                f"upload {session.upload_id} has {current} bytes, not {offset}",
                hint=f"resume from offset {current}",
            )
        try:
            yield session.size - current, data
        except BaseException:
            os.ftruncate(fd, current)
            raise
    finally:
        os.close(fd)


def complete_check(session: UploadSession, offset: int) -> None:
    """Refuse to complete a session whose bytes are not all there.

    Raises:
        InvalidInputError: naming how many bytes are missing.
    """
    if offset != session.size:
        raise InvalidInputError(
            f"upload {session.upload_id} has {offset} of its {session.size} bytes",
            hint=f"send the rest from offset {offset}, then complete it",
        )


def data_path(home: Path, session: UploadSession) -> Path:
    return _directory(home, session.upload_id) / "data"


def close_session(home: Path, session: UploadSession) -> None:
    """Remove a session's directory (completed or abandoned)."""
    shutil.rmtree(_directory(home, session.upload_id), ignore_errors=True)


def stale_sessions(home: Path, now: float | None = None) -> Iterator[tuple[Path, int, float]]:
    """Sessions untouched for :data:`SESSION_TTL_S`: (directory, bytes, seconds idle)."""
    now = time.time() if now is None else now
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(uploads_root(home).iterdir()):
            if entry.is_symlink() or not entry.is_dir() or not _ID.match(entry.name):
                continue
            stats = [p.stat() for p in entry.iterdir() if p.is_file()]
            newest = max((s.st_mtime for s in stats), default=entry.stat().st_mtime)
            if now - newest >= SESSION_TTL_S:
                yield entry, sum(s.st_size for s in stats), now - newest
