"""Scratch directories live in the home and go on every way out; crash leftovers are found
and removed, and nothing a live process uses is ever touched."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ghaf.artifacts.leftovers import UNMARKED_GRACE_S, find_leftovers, remove_leftovers
from ghaf.artifacts.local import LocalBlobStore
from ghaf.artifacts.scratch import (
    MARKER,
    SIGTERM_EXIT,
    process_scratch_dir,
    release,
    scratch_dir,
    sigterm_exits,
)
from ghaf.artifacts.store import ContentStore
from ghaf.settings import GhafSettings, load_settings


@pytest.fixture
def home_settings(isolated_env: Path) -> GhafSettings:
    return load_settings(home=isolated_env)


@contextmanager
def _child(code: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A Python child running ``code``; killed (if still running) and reaped afterwards."""
    with subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line, f"the child printed nothing (exit {process.wait(timeout=60)})"
    return line


HOLD = """
import sys, time
from pathlib import Path
from ghaf.artifacts.scratch import scratch_dir, sigterm_exits
with sigterm_exits(), scratch_dir(Path(sys.argv[1]), "serve-") as d:
    (d / "model.onnx").write_bytes(b"plaintext weights")
    print(d, flush=True)
    while True:
        time.sleep(0.05)
"""


def test_a_scratch_directory_is_private_marked_and_removed_on_errors(
    home_settings: GhafSettings,
) -> None:
    home = home_settings.home
    with scratch_dir(home, "stage-") as directory:
        assert directory.parent == home / "tmp"
        assert directory.name.startswith("stage-")
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((home / "tmp").stat().st_mode) == 0o700
        marker = json.loads((directory / MARKER).read_text())
        assert marker["pid"] == os.getpid() and marker["purpose"] == "stage"
        kept = directory
    assert not kept.exists()
    for error in (ValueError("bad input"), KeyboardInterrupt()):
        with pytest.raises(type(error)), scratch_dir(home, "stage-") as directory:
            (directory / "rows.parquet").write_bytes(b"secret")
            raise error
        assert not directory.exists()
    assert list((home / "tmp").iterdir()) == []


def test_sigterm_removes_the_directory_and_exits_143(home_settings: GhafSettings) -> None:
    with _child(HOLD, str(home_settings.home)) as process:
        directory = Path(_first_line(process))
        assert (directory / "model.onnx").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == SIGTERM_EXIT
    assert not directory.exists()
    assert find_leftovers(home_settings) == ([], [])


def test_a_process_scratch_directory_lasts_until_the_process_exits(
    home_settings: GhafSettings,
) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from ghaf.artifacts.scratch import process_scratch_dir\n"
        "print(process_scratch_dir(Path(sys.argv[1]), 'output-'), flush=True)\n"
    )
    with _child(code, str(home_settings.home)) as process:
        directory = Path(_first_line(process))
        assert process.wait(timeout=60) == 0
    assert not directory.exists()
    here = process_scratch_dir(home_settings.home, "output-")
    assert here.is_dir()
    release(here)
    assert not here.exists()


def test_kill_9_leaves_a_leftover_that_gc_removes_but_never_a_live_one(
    home_settings: GhafSettings,
) -> None:
    with _child(HOLD, str(home_settings.home)) as process:
        dead = Path(_first_line(process))
        process.kill()
        process.wait(timeout=60)
    with scratch_dir(home_settings.home, "serve-") as live:
        leftovers, in_use = find_leftovers(home_settings)
        assert [(item.path, item.kind, item.pid) for item in leftovers] == [
            (dead, "scratch", process.pid)
        ]
        assert leftovers[0].size >= len(b"plaintext weights")  # and the marker
        assert [use.path for use in in_use] == [live]
        assert "pid" in leftovers[0].describe() and str(dead) in leftovers[0].describe()

        assert [item.path for item in remove_leftovers(home_settings, dry_run=True)] == [dead]
        assert dead.exists()
        assert [item.path for item in remove_leftovers(home_settings)] == [dead]
        assert not dead.exists()
        assert live.exists() and (live / MARKER).exists()
        assert find_leftovers(home_settings)[0] == []


def test_a_directory_without_a_marker_counts_only_once_nothing_touched_it_for_an_hour(
    home_settings: GhafSettings,
) -> None:
    root = home_settings.home / "tmp"
    old = root / "stage-abc123"  # what tempfile.TemporaryDirectory(dir=<home>/tmp) leaves
    fresh = root / "stage-def456"
    for directory in (old, fresh):
        directory.mkdir(parents=True)
        (directory / "part-0.parquet").write_bytes(b"rows")
    past = time.time() - UNMARKED_GRACE_S - 60
    for path in (old / "part-0.parquet", old):
        os.utime(path, (past, past))
    leftovers, _ = find_leftovers(home_settings)
    assert [(item.path, item.kind) for item in leftovers] == [(old, "unmarked")]
    remove_leftovers(home_settings)
    assert not old.exists() and fresh.exists()


WRITER = """
import sys, time
from pathlib import Path
from ghaf.artifacts.local import LocalBlobStore
writer = LocalBlobStore(Path(sys.argv[1])).begin_write()
writer.write(b"x" * 4096)
print("started", flush=True)
while True:
    time.sleep(0.05)
"""


def test_a_partial_blob_of_a_killed_writer_is_a_leftover_a_live_writers_is_not(
    home_settings: GhafSettings,
) -> None:
    root = home_settings.home / "artifacts"
    with _child(WRITER, str(root)) as process:
        assert _first_line(process) == "started"
        process.kill()
        process.wait(timeout=60)
    store = ContentStore(LocalBlobStore(root))
    live = store.blobs.begin_write()
    live.write(b"in progress")
    leftovers, _ = find_leftovers(home_settings)
    assert [(item.kind, item.size) for item in leftovers] == [("partial-blob", 4096)]
    assert [item.kind for item in remove_leftovers(home_settings)] == ["partial-blob"]
    # The live writer's file stayed, and its write commits.
    live.commit("blobs/kept")
    assert store.blobs.exists("blobs/kept")
    assert list((root / ".tmp").iterdir()) == []
    assert find_leftovers(home_settings) == ([], [])


def test_sigterm_exits_restores_the_previous_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_exits():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) == before
