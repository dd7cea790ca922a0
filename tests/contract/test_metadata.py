"""The metadata contract on every database: SQLite (embedded) and PostgreSQL (real server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import load_settings
from ghaf.testing import MetadataContract


@pytest.fixture(params=["sqlite", "postgresql"])
def platform(request: pytest.FixtureRequest, isolated_env: Path) -> Iterator[Platform]:
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with init_home(load_settings(home=isolated_env, metadata_url=url)) as opened:
        yield opened


class TestMetadata(MetadataContract):
    pass
