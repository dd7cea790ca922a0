"""The metadata SQLite file holds token hashes and the audit trail: it and its journals
are the owner's alone (0600), whatever the umask, in a new home and an older one."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.settings import GhafSettings


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask, which leaves new files readable by everyone (0644)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(home: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.glob("ghaf.db*")}


def test_a_new_homes_metadata_file_and_journals_are_private(
    settings: GhafSettings, open_umask: None
) -> None:
    with init_home(settings) as platform:
        create_project(platform, platform.admin(), "fraud")  # writes: the WAL exists
        modes = _modes(settings.home)
    assert {"ghaf.db", "ghaf.db-wal"} <= set(modes), modes
    assert set(modes.values()) == {0o600}, modes


def test_an_older_homes_readable_metadata_file_is_made_private(
    settings: GhafSettings, open_umask: None
) -> None:
    with init_home(settings):
        pass
    database = settings.home / "ghaf.db"
    database.chmod(0o644)  # as homes made before were
    with Platform(settings) as platform:
        create_project(platform, platform.admin(), "fraud")
    assert set(_modes(settings.home).values()) == {0o600}
