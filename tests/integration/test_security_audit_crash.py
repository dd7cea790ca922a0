"""The audit chain under SIGKILL and concurrent writers: valid, nothing acknowledged lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ghaf.access.audit import verify_trail
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.checkpoints import read_checkpoints
from ghaf.settings import GhafSettings, load_settings

WRITER = """
import sys
from ghaf.platform import Platform
from ghaf.settings import load_settings

tag, count = sys.argv[1], int(sys.argv[2])
settings = load_settings()
with Platform(settings) as platform:
    actor = platform.admin()
    for i in range(count):
        with platform.spine.operation(actor, "dataset.test_append", f"item:{tag}:{i}", "default"):
            pass
        print(f"item:{tag}:{i}", flush=True)  # acknowledged: the commit returned
"""


def _settings(home: Path, url: str | None) -> GhafSettings:
    return load_settings(home=home, metadata_url=url, security={"audit_checkpoint_every": 7})


def _start(home: Path, url: str | None, tag: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "GHAF_HOME": str(home), "GHAF_SECURITY__AUDIT_CHECKPOINT_EVERY": "7"}
    if url:
        env["GHAF_METADATA_URL"] = url
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, tag, str(count)], stdout=subprocess.PIPE, text=True, env=env
    )


def _collect(process: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            into.append(line.strip())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _check(settings: GhafSettings, acknowledged: list[str]) -> int:
    with Platform(settings) as platform:
        # Against the log and its copies: a kill between the two leaves the newest
        # checkpoint uncopied, a pending state, never a failure.
        report = verify_trail(platform)
        assert report.ok, report.problem
        with platform.read_session() as session:
            stored = set(session.execute(select(AuditRecordRow.resource)).scalars())
    lost = [resource for resource in acknowledged if resource not in stored]
    assert not lost, f"acknowledged but lost: {lost[:5]}"
    return report.records


@pytest.mark.slow
def test_twenty_sigkills_under_load_leave_a_valid_chain(isolated_env: Path) -> None:
    settings = _settings(isolated_env, None)
    init_home(settings).close()
    rng = random.Random(7)
    acknowledged: list[str] = []
    for run in range(20):
        # One writer appending as fast as it can, killed at a random moment.
        process = _start(isolated_env, None, f"run{run}", 100_000)
        seen: list[str] = []
        thread = _collect(process, seen)
        deadline = time.monotonic() + 60
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        thread.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
        assert process.returncode == -signal.SIGKILL
        acknowledged.extend(seen)
        records = _check(settings, acknowledged)
    assert records > len(acknowledged) >= 20 * 3
    assert [c for _, c in read_checkpoints(settings) if c is None] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_processes_appending_keep_one_chain(
    backend: str, isolated_env: Path, request: pytest.FixtureRequest
) -> None:
    url = None if backend == "sqlite" else request.getfixturevalue("postgres_url")
    settings = _settings(isolated_env, url)
    init_home(settings).close()
    writers = [_start(isolated_env, url, f"w{w}", 150) for w in range(2)]
    seen: list[list[str]] = [[], []]
    threads = [_collect(p, s) for p, s in zip(writers, seen, strict=True)]
    for process, thread in zip(writers, threads, strict=True):
        assert process.wait(timeout=300) == 0
        thread.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
    assert [len(s) for s in seen] == [150, 150]
    records = _check(settings, seen[0] + seen[1])
    assert records == 300 + 1  # and home.init
    sizes = [c.size for _, c in read_checkpoints(settings) if c]
    assert sizes and sizes == sorted(set(sizes)) and sizes[-1] >= 294
