"""The audit chain under SIGKILL and concurrent writers: valid, nothing acknowledged lost."""

from __future__ import annotations

import contextlib
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

FORKING_WRITER = """
import os
import sys
import traceback

from ghaf.platform import Platform
from ghaf.settings import load_settings


def write(tag, count, ack):
    with open(ack, "w") as out, Platform(load_settings()) as platform:
        actor = platform.admin()
        for i in range(count):
            with platform.spine.operation(
                actor, "dataset.test_append", f"item:{tag}:{i}", "default"
            ):
                pass
            out.write(f"item:{tag}:{i}\\n")
            out.flush()  # acknowledged: the commit returned


# Ghaf is imported once; each line on stdin (TAG COUNT FILE) forks a writer process
# that opens the platform itself and appends like WRITER, acknowledging into FILE.
# Printed: the writer's pid, then how it ended (its exit code, or minus its signal).
for order in sys.stdin:
    tag, count, ack = order.split()
    pid = os.fork()
    if pid == 0:
        try:
            write(tag, int(count), ack)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
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


def _acknowledged(ack: Path) -> list[str]:
    """The lines a writer finished (a kill may cut the last one short)."""
    text = ack.read_text() if ack.exists() else ""
    return text.splitlines()[: text.count("\n")]


@pytest.mark.slow
def test_twenty_sigkills_under_load_leave_a_valid_chain(isolated_env: Path, tmp_path: Path) -> None:
    settings = _settings(isolated_env, None)
    init_home(settings).close()
    rng = random.Random(7)
    acknowledged: list[str] = []
    # Each writer is a process of its own, forked from one that has imported Ghaf once
    # (twenty interpreters starting cost more than the test itself).
    env = {
        **os.environ,
        "GHAF_HOME": str(isolated_env),
        "GHAF_SECURITY__AUDIT_CHECKPOINT_EVERY": "7",
    }
    forker = subprocess.Popen(
        [sys.executable, "-c", FORKING_WRITER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert forker.stdin is not None and forker.stdout is not None
    writer = None  # the pid of a writer not yet reported ended
    try:
        for run in range(20):
            # One writer appending as fast as it can, killed at a random moment.
            ack = tmp_path / f"run{run}.ack"
            forker.stdin.write(f"run{run} 100000 {ack}\n")
            forker.stdin.flush()
            writer = int(forker.stdout.readline())
            deadline = time.monotonic() + 60
            while len(_acknowledged(ack)) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.2))
            os.kill(writer, signal.SIGKILL)
            assert int(forker.stdout.readline()) == -signal.SIGKILL
            writer = None
            seen = _acknowledged(ack)
            assert len(seen) >= 3
            acknowledged.extend(seen)
            records = _check(settings, acknowledged)
    finally:
        if writer is not None:  # the test failed with a writer running
            with contextlib.suppress(ProcessLookupError):
                os.kill(writer, signal.SIGKILL)
        forker.stdin.close()
        ended = forker.wait(timeout=30)
        forker.stdout.close()
    assert ended == 0
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
