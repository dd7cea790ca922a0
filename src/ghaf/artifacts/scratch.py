"""Scratch directories inside the home: private, marked with their owner, removed on exit.

Decrypted models, staged uploads and step inputs are plaintext at rest while they
exist, so they live under ``<home>/tmp`` (0700, never the system's temporary
directory), and each directory holds a marker naming the process that owns it (PID,
its start time, host). A crash that skips every ``finally`` (``kill -9``, power loss)
leaves a directory whose owner is gone: ``ghaf doctor`` reports it and ``ghaf gc``
removes it (:mod:`ghaf.artifacts.leftovers`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

SCRATCH_DIR = "tmp"
"""The home's subdirectory holding every scratch directory."""
MARKER = ".ghaf-scratch.json"
"""The owner marker inside each scratch directory."""
SIGTERM_EXIT = 128 + signal.SIGTERM
"""Exit status of a process that stopped because of SIGTERM (the shell's convention)."""


@dataclass(frozen=True)
class Owner:
    """The process that made a scratch directory.

    ``started`` is the process's start time in clock ticks since boot (Linux
    ``/proc/PID/stat``): a PID reused by a later process has another one.
    """

    pid: int
    started: int | None
    host: str
    created: float
    purpose: str


def scratch_root(home: Path) -> Path:
    """``<home>/tmp``, created private (0700) with the home if either is missing."""
    with contextlib.suppress(FileExistsError):
        home.mkdir(parents=True, mode=0o700)
    root = home / SCRATCH_DIR
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    return root


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 else None


def _make(home: Path, prefix: str) -> Path:
    directory = Path(tempfile.mkdtemp(dir=scratch_root(home), prefix=prefix))  # 0700
    pid = os.getpid()
    owner = Owner(pid, _start_ticks(pid), socket.gethostname(), time.time(), prefix.rstrip("-"))
    (directory / MARKER).write_text(json.dumps(asdict(owner)))
    return directory


@contextlib.contextmanager
def scratch_dir(home: Path, prefix: str) -> Iterator[Path]:
    """A private directory under ``<home>/tmp`` for the block, removed on every way out.

    Exceptions and ``KeyboardInterrupt`` pass through the removal; a server that must
    survive SIGTERM too runs inside :func:`sigterm_exits`.

    Args:
        home: the platform home (``settings.home``) that holds the directory.
        prefix: names the directory (``serve-``, ``stage-``...), so a leftover says what
            left it.
    """
    directory = _make(home, prefix)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


_HELD: dict[Path, int] = {}
"""Directories :func:`process_scratch_dir` made, with the PID that made each."""
_HELD_LOCK = threading.Lock()


def _remove_held() -> None:
    with _HELD_LOCK:
        for directory, pid in sorted(_HELD.items()):
            if pid == os.getpid():  # a forked child exiting leaves its parent's alone
                shutil.rmtree(directory, ignore_errors=True)
        _HELD.clear()


atexit.register(_remove_held)


def process_scratch_dir(home: Path, prefix: str) -> Path:
    """A scratch directory that lives as long as this process (removed at exit).

    For paths handed back to a caller who reads them after the function returns (a
    step's output directory); :func:`release` removes one earlier.
    """
    directory = _make(home, prefix)
    with _HELD_LOCK:
        _HELD[directory] = os.getpid()
    return directory


def release(directory: Path) -> None:
    """Remove a directory from :func:`process_scratch_dir` now."""
    with _HELD_LOCK:
        _HELD.pop(directory, None)
    shutil.rmtree(directory, ignore_errors=True)


def read_owner(directory: Path) -> Owner | None:
    """The owner a scratch directory's marker names; None when it has no readable marker."""
    try:
        raw = json.loads((directory / MARKER).read_text())
        return Owner(
            int(raw["pid"]),
            None if raw.get("started") is None else int(raw["started"]),
            str(raw["host"]),
            float(raw["created"]),
            str(raw.get("purpose", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def owner_alive(owner: Owner) -> bool:
    """Whether the owner may still be running (True when this host cannot tell)."""
    if owner.host != socket.gethostname():
        return True  # a home on a shared disk: another machine's process
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    started = _start_ticks(owner.pid)
    return owner.started is None or started is None or started == owner.started


def remove_scratch_of(home: Path, pid: int) -> list[Path]:
    """Remove the scratch directories of ``pid``, a process this one saw die (a worker it
    killed); a live owner's directory is kept. Returns what was removed."""
    root = home / SCRATCH_DIR
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for directory in root.iterdir():
            owner = read_owner(directory)
            if owner is not None and owner.pid == pid and not owner_alive(owner):
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory)
    return removed


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` in the main thread.

    The default action of SIGTERM ends the process without running ``finally`` blocks,
    which would leave scratch directories behind. uvicorn handles SIGTERM itself while
    serving (a graceful shutdown) and raises it again once done, so it lands here.
    Outside the main thread this does nothing (Python allows handlers only there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(SIGTERM_EXIT)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
