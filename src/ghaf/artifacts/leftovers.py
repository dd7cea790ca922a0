"""Crash leftovers: scratch directories whose owner died and partial blobs nobody writes.

A process killed with ``kill -9`` runs no cleanup, so it can leave a scratch directory
(plaintext: a decrypted model, a staged upload) and a partial blob in the local artifact
store's ``.tmp``. ``ghaf doctor`` lists them (:func:`find_leftovers`) and ``ghaf gc``
removes them (:func:`remove_leftovers`). Nothing a live process uses is ever touched: a
scratch directory's marker names its owner (:mod:`ghaf.artifacts.scratch`), and a blob
writer holds an exclusive ``flock`` on its temporary file for as long as it writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ghaf.artifacts.presign import PresigningBlobStore, presigning, remove_staged, stale_staged
from ghaf.artifacts.scratch import SCRATCH_DIR, owner_alive, read_owner
from ghaf.artifacts.upload_sessions import stale_sessions
from ghaf.settings import GhafSettings

UNMARKED_GRACE_S = 3600.0
"""An entry of ``<home>/tmp`` with no owner marker (left by an older version, or a
directory made without the scratch API) counts as left over once nothing in it has
changed for this long: a live writer keeps touching its files."""


@dataclass(frozen=True)
class Leftover:
    """One thing a crash left behind.

    ``kind`` is ``scratch`` (owner ``pid`` is gone), ``unmarked`` (no owner marker,
    untouched for :data:`UNMARKED_GRACE_S`), ``partial-blob`` (an artifact write that
    never committed), ``stale-upload`` (a resumable upload nobody touched for
    :data:`~ghaf.artifacts.upload_sessions.SESSION_TTL_S`) or ``staged-upload`` (an
    object PUT through a presigned URL, or parts sent for one, never committed, for
    :data:`~ghaf.artifacts.presign.STAGED_TTL_S`; ``path`` is its key in the bucket).
    """

    path: Path
    kind: str
    size: int
    age_s: float
    pid: int | None = None

    def describe(self) -> str:
        """One line for a person: what, where, how big, how old."""
        owner = f", pid {self.pid} gone" if self.pid is not None else ""
        return f"{self.kind} {self.path} ({format_size(self.size)}, {_age(self.age_s)} old{owner})"

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "size": self.size,
            "age_s": round(self.age_s, 1),
            "pid": self.pid,
        }


@dataclass(frozen=True)
class InUse:
    """A scratch directory kept because its owner still runs (or runs on another host)."""

    path: Path
    pid: int
    host: str


def format_size(n: int) -> str:
    """Bytes for a person: ``512 B``, ``3.2 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _tree(path: Path) -> tuple[int, float]:
    """Total size of the files under ``path`` and the newest modification time."""
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return 0, 0.0
    if not path.is_dir() or path.is_symlink():
        return stat.st_size, stat.st_mtime
    size, newest = 0, stat.st_mtime
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            with contextlib.suppress(FileNotFoundError):
                entry = Path(folder, name).lstat()
                newest = max(newest, entry.st_mtime)
                if name in files:
                    size += entry.st_size
    return size, newest


def local_blob_temp(settings: GhafSettings) -> Path | None:
    """Where the local artifact store keeps writes in progress; None for object storage."""
    url = urlparse(settings.resolved_artifact_url)
    if url.scheme != "file":
        return None  # an S3 bucket's .tmp/ prefix: a lifecycle rule expires it
    return Path(unquote(url.path)) / ".tmp"


def _unlocked(path: Path) -> bool:
    """Whether no writer holds ``path``'s lock (a live blob writer always does)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _scan(settings: GhafSettings) -> Iterator[Leftover | InUse]:
    now = time.time()
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted((settings.home / SCRATCH_DIR).iterdir()):
            owner = read_owner(entry) if entry.is_dir() and not entry.is_symlink() else None
            size, newest = _tree(entry)
            if owner is None:
                if now - newest >= UNMARKED_GRACE_S:
                    yield Leftover(entry, "unmarked", size, now - newest)
            elif owner_alive(owner):
                yield InUse(entry, owner.pid, owner.host)
            else:
                yield Leftover(entry, "scratch", size, now - owner.created, owner.pid)
    for directory, size, idle in stale_sessions(settings.home, now):
        yield Leftover(directory, "stale-upload", size, idle)
    bucket = _presigning_store(settings)
    if bucket is not None:
        for key, size, idle in stale_staged(bucket, now):
            yield Leftover(Path(key), "staged-upload", size, idle)
    temp = local_blob_temp(settings)
    if temp is None:
        return
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(temp.iterdir()):
            if entry.is_file() and not entry.is_symlink() and _unlocked(entry):
                size, newest = _tree(entry)
                yield Leftover(entry, "partial-blob", size, now - newest)


def _presigning_store(settings: GhafSettings) -> PresigningBlobStore | None:
    """The artifact bucket, when artifacts are on object storage (grants stage there)."""
    if urlparse(settings.resolved_artifact_url).scheme != "s3":
        return None
    from ghaf.artifacts.s3 import S3BlobStore

    store = S3BlobStore(
        settings.resolved_artifact_url,
        region=settings.artifact_region,
        endpoint_url=settings.s3_endpoint_url,
    )
    return presigning(store)


def find_leftovers(settings: GhafSettings) -> tuple[list[Leftover], list[InUse]]:
    """What crashes left in the home and the local artifact store, and what is in use."""
    leftovers: list[Leftover] = []
    in_use: list[InUse] = []
    for item in _scan(settings):
        (leftovers if isinstance(item, Leftover) else in_use).append(item)  # type: ignore[arg-type]
    return leftovers, in_use


def _remove_blob(path: Path) -> bool:
    """Unlink a partial blob while holding its lock, so no writer can be holding it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink()
    except (BlockingIOError, FileNotFoundError):
        return False
    finally:
        os.close(fd)
    return True


def _still_left(item: Leftover) -> bool:
    """Whether ``item`` is still left over now (things may have changed since the scan)."""
    if item.kind == "scratch":
        owner = read_owner(item.path)
        return owner is not None and owner.pid == item.pid and not owner_alive(owner)
    if item.kind == "unmarked":
        return read_owner(item.path) is None and time.time() - _tree(item.path)[1] >= (
            UNMARKED_GRACE_S
        )
    if item.kind == "stale-upload":
        return any(entry == item.path for entry, _, _ in stale_sessions(item.path.parent.parent))
    return True


def remove_leftovers(settings: GhafSettings, *, dry_run: bool = False) -> list[Leftover]:
    """Remove every crash leftover (or, with ``dry_run``, only say which); returns them.

    Each is checked again just before it goes, so a directory whose owner still runs,
    or a blob a writer holds, stays.
    """
    leftovers, _ = find_leftovers(settings)
    if dry_run:
        return leftovers
    removed: list[Leftover] = []
    bucket = None
    for item in leftovers:
        if item.kind == "staged-upload":  # a key in the bucket, never a local path
            bucket = bucket or _presigning_store(settings)
            if bucket is not None:
                remove_staged(bucket, item.path.as_posix())
                removed.append(item)
            continue
        if not _still_left(item):
            continue
        if item.kind == "partial-blob":
            if _remove_blob(item.path):
                removed.append(item)
            continue
        if item.path.is_dir() and not item.path.is_symlink():
            shutil.rmtree(item.path, ignore_errors=True)
        else:
            item.path.unlink(missing_ok=True)
        if not item.path.exists():
            removed.append(item)
    return removed
