"""The key file changed by another process is seen at the next wrap or unwrap.

A server worker keeps its key provider for hours; a CLI ``ghaf keys rotate`` or
``destroy-version`` (or another worker) replaces the key file meanwhile. Wrapping with
the retired version would make artifacts written after a destroy unreadable, and
serving destroyed material from memory would undo crypto-shredding.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.access.rotation import encrypted_store
from ghaf.errors import NotFoundError
from ghaf.platform import Platform
from ghaf.security.keys import LocalKeyProvider
from ghaf.settings import load_settings

CONTEXT = b"artifact:abc"


def test_a_rotation_and_a_destroy_by_another_provider_are_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "kek.json"
    admin, worker = LocalKeyProvider(path), LocalKeyProvider(path)
    admin.create()
    before = worker.wrap(os.urandom(32), CONTEXT)  # the worker has read (and cached) v1
    assert before.version == 1
    assert admin.begin_rotation() == 2
    admin.finish_rotation()
    after = worker.wrap(b"k" * 32, CONTEXT)
    assert (after.version, worker.current_version()) == (2, 2)
    assert admin.unwrap(after, CONTEXT) == b"k" * 32  # wrapped by the admin's v2
    admin.destroy_version(1)
    with pytest.raises(NotFoundError, match="version 1 was destroyed"):
        worker.unwrap(before, CONTEXT)
    assert worker.unwrap(after, CONTEXT) == b"k" * 32


def test_a_rewritten_key_file_is_read_again_even_within_one_clock_tick(tmp_path: Path) -> None:
    """The replaced file is a new inode: no reliance on mtime resolution."""
    path = tmp_path / "kek.json"
    first, other = LocalKeyProvider(path), LocalKeyProvider(path)
    first.create()
    stamp = path.stat()
    assert first.current_version() == 1
    other.begin_rotation()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same mtime as before
    assert first.current_version() == 2


def _ghaf(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_running_platform_writes_with_the_version_the_cli_rotated_to(
    platform: Platform,
) -> None:
    """The data-loss case: another worker writes after the CLI's rotation, then the CLI
    destroys the old version; what the worker wrote stays readable, and neither
    process decrypts with the destroyed version from memory."""
    home = platform.settings.home
    store = encrypted_store(platform)
    old = store.put_bytes(b"written before the rotation")
    before = store.headers(old.digest)[0]  # wrapped by v1, as read before the rotation
    second = Platform(load_settings(home=home))  # another worker on the same home
    try:
        worker = encrypted_store(second)
        assert worker.read_bytes(old.digest) == b"written before the rotation"  # v1 cached
        _ghaf(home, "keys", "rotate")
        new = worker.put_bytes(b"written by a worker after the rotation")
        assert [h.wrapped.version for h in worker.headers(new.digest)] == [2]
        _ghaf(home, "keys", "destroy-version", "1", "--yes")
        assert store.read_bytes(new.digest) == b"written by a worker after the rotation"
        assert worker.read_bytes(old.digest) == b"written before the rotation"  # re-wrapped
        with pytest.raises(NotFoundError, match="version 1 was destroyed"):
            worker.keys.unwrap(before.wrapped, before.aad)
    finally:
        second.close()
