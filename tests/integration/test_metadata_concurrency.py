"""Two processes writing metadata at once lose nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.home import init_home
from ghaf.projects import list_projects
from ghaf.security.audit import AuditLog
from ghaf.settings import load_settings

WRITER = """
import sys
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.settings import load_settings

prefix, count = sys.argv[1], int(sys.argv[2])
with Platform(load_settings()) as platform:
    for i in range(count):
        create_project(platform, platform.admin(), f"{prefix}-{i}")
print("ok", flush=True)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_writers_lose_nothing(
    backend: str, isolated_env: Path, request: pytest.FixtureRequest
) -> None:
    url = None if backend == "sqlite" else request.getfixturevalue("postgres_url")
    settings = load_settings(home=isolated_env, metadata_url=url)
    init_home(settings).close()
    env = {**os.environ, "GHAF_HOME": str(isolated_env)}
    if url:
        env["GHAF_METADATA_URL"] = url
    count = 60
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, str(count)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("left", "right")
    ]
    for proc in writers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    with init_home(settings) as platform:
        names = {p.name for p in list_projects(platform)}
        assert names == {f"{side}-{i}" for side in ("left", "right") for i in range(count)}
        with platform.read_session() as session:
            log = AuditLog()
            assert log.first_broken(session) is None
            records = list(log.records(session))
            assert [r.seq for r in records] == list(range(1, len(records) + 1))
            creates = [r for r in records if r.action == "project.create"]
            assert len(creates) == 2 * count
