"""KEK rotation killed with SIGKILL half-way: every artifact stays readable; resume finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.access.rotation import encrypted_store, local_keys
from ghaf.errors import NotFoundError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import GhafSettings, load_settings

COUNT = 60
ROTATOR = """
import sys, time
from ghaf.platform import Platform
from ghaf.access.rotation import rotate_keys
from ghaf.settings import load_settings

platform = Platform(load_settings(home=sys.argv[1]))

def progress(digest):
    print(digest, flush=True)
    time.sleep(0.01)

rotate_keys(platform, platform.admin(), progress=progress)
print("DONE", flush=True)
"""


def _fill(settings: GhafSettings) -> dict[str, bytes]:
    contents = {}
    with init_home(settings) as platform:
        for index in range(COUNT):
            data = os.urandom(100 + index * 700)
            contents[platform.artifacts.put_bytes(data).digest] = data
    return contents


def _kill_half_way(home: Path) -> int:
    process = subprocess.Popen(
        [sys.executable, "-c", ROTATOR, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    done = 0
    for _line in process.stdout:
        done += 1
        if done == COUNT // 2:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    return done


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_killed_rotation_leaves_everything_readable_and_resumes(settings: GhafSettings) -> None:
    contents = _fill(settings)
    _kill_half_way(settings.home)
    with Platform(load_settings(home=settings.home)) as platform:
        assert local_keys(platform).rotation_pending() == 2
        store = encrypted_store(platform)
        versions = [store.headers(d)[0].wrapped.version for d in contents]
        assert 1 in versions and 2 in versions  # really half-way
        for digest, data in contents.items():
            assert store.read_bytes(digest) == data
    resumed = _ghaf(settings.home, "keys", "rotate")
    assert resumed.returncode == 0, resumed.stderr
    assert "finished the interrupted rotation to KEK version 2" in resumed.stdout
    destroyed = _ghaf(settings.home, "keys", "destroy-version", "1", "--yes")
    assert "0 artifacts are now unreadable" in destroyed.stdout
    with Platform(load_settings(home=settings.home)) as platform:
        store = encrypted_store(platform)
        assert local_keys(platform).rotation_pending() is None
        for digest, data in contents.items():
            assert [h.wrapped.version for h in store.headers(digest)] == [2]
            assert store.read_bytes(digest) == data


@pytest.mark.slow
def test_destroy_version_shreds_what_was_not_rewrapped(settings: GhafSettings) -> None:
    contents = _fill(settings)
    _kill_half_way(settings.home)
    refused = _ghaf(settings.home, "keys", "destroy-version", "1")
    assert refused.returncode == 3 and "irreversible" in refused.stderr
    done = _ghaf(settings.home, "keys", "destroy-version", "1", "--yes")
    assert done.returncode == 0, done.stderr
    readable = shredded = 0
    with Platform(load_settings(home=settings.home)) as platform:
        store = encrypted_store(platform)
        for digest, data in contents.items():
            try:
                assert store.read_bytes(digest) == data
                readable += 1
            except NotFoundError as exc:
                assert "was destroyed at" in exc.headline
                assert "crypto-shredded" in exc.headline
                shredded += 1
    assert readable >= COUNT // 2 - 1 and shredded >= 1 and readable + shredded == COUNT
    assert f"{shredded} artifacts are now unreadable" in done.stdout
    failed = _ghaf(settings.home, "keys", "destroy-version", "2", "--yes")
    assert failed.returncode == 3 and "current version" in failed.stderr  # invalid input
    finished = _ghaf(settings.home, "keys", "rotate")
    assert f"{shredded} unreadable (crypto-shredded)" in finished.stdout
    listed = _ghaf(settings.home, "keys", "list")
    assert "destroyed" in listed.stdout and "live (current)" in listed.stdout
