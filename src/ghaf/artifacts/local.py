"""Local-directory blob backend: temp file, fsync, rename; nothing partial is ever visible."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ghaf.errors import BackendUnavailableError, NotFoundError

WRITEBACK = 8 * 1024 * 1024
"""Bytes of a blob written between requests to the kernel to start writing them to disk,
so a large blob goes to disk while it streams in and the fsync at its commit finds little
left to do (durability still comes from that fsync alone)."""
_SYNC_FILE_RANGE_WRITE = 2


def _writeback_starter() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` (which Python's ``os`` lacks), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_start_writeback = _writeback_starter()


class _LocalWriter:
    def __init__(self, root: Path) -> None:
        self._root = root
        while True:
            fd, name = tempfile.mkstemp(dir=root / ".tmp", prefix=f"{uuid.uuid4().hex}-")
            # Held until the file is committed or removed: `ghaf gc` takes only unlocked
            # files, and one it removed before the lock was taken has no link left.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                break
            os.close(fd)
        self._path = Path(name)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._written = 0
        self._started = 0  # bytes whose write-back has been started

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self._written += len(view)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]
        if _start_writeback is not None and self._written - self._started >= WRITEBACK:
            # Advisory and asynchronous: a failure here is the commit's fsync to report.
            _start_writeback(
                self._file.fileno(),
                self._started,
                self._written - self._started,
                _SYNC_FILE_RANGE_WRITE,
            )
            self._started = self._written

    def commit(self, key: str) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        final = self._root / key
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # same content already stored: keep the old one
                self._path.unlink(missing_ok=True)
                return
            self._path.replace(final)
        finally:
            self._file.close()  # releases the lock only once the file has left .tmp
        _fsync_dir(final.parent)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self._path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Blobs as files under ``root``; writes land in ``root/.tmp`` until committed.

    Its region is the one settings declare: a directory cannot say where its disk is
    (an S3 bucket can, and :class:`~ghaf.artifacts.s3.S3BlobStore` asks it).
    """

    def __init__(self, root: Path, *, region: str = "local") -> None:
        self.root = root
        self.region = region
        self.url = root.as_uri()
        try:
            (root / ".tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot create the artifact directory {root}: {exc.strerror}",
                hint="check the path and its permissions, or set artifact_url",
            ) from exc

    def begin_write(self) -> _LocalWriter:
        return _LocalWriter(self.root)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            handle = (self.root / key).open("rb", buffering=0)
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact blob {key} does not exist") from exc
        with handle:
            yield handle

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(self.root)
            if path.is_file() and relative.parts[0] != ".tmp":
                yield relative.as_posix()

    def clean_temp(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files left by crashed writers; returns how many.

        Only files untouched for ``older_than_s`` are removed, so live writers are safe.
        """
        removed = 0
        cutoff = time.time() - older_than_s
        for path in (self.root / ".tmp").iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
        return removed
