"""When checkpoints are signed (init, every N records, every T seconds, at close and exit),
where they are kept (the log and a write-once copy), and the Merkle tree they sign."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghaf.access.audit import create_checkpoint, verify_trail
from ghaf.artifacts.local import LocalBlobStore
from ghaf.errors import BackendUnavailableError, IntegrityError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditHeadRow
from ghaf.security.audit_verify import verify_audit
from ghaf.security.checkpoints import (
    COPY_PREFIX,
    Checkpointer,
    checkpoints_path,
    last_checkpoint,
    read_checkpoints,
    read_log,
)
from ghaf.security.merkle import MerkleFrontier, merkle_root
from ghaf.settings import GhafSettings, load_settings


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _home(home: Path, **security: object) -> Platform:
    return init_home(load_settings(home=home, security=security))


def _sizes(settings: GhafSettings) -> list[int]:
    return [c.size for _, c in read_checkpoints(settings) if c]


def _copies(platform: Platform) -> list[str]:
    store = platform.checkpointer.copy_store()
    assert store is not None
    return sorted(store.keys(COPY_PREFIX))


def _head(platform: Platform) -> int:
    with platform.read_session() as session:
        head = session.get(AuditHeadRow, 1)
        assert head is not None
        return head.seq


def _projects(platform: Platform, count: int, prefix: str = "p") -> None:
    for index in range(count):
        create_project(platform, platform.admin(), f"{prefix}{index}")


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("n", [*range(0, 20), 31, 32, 33, 64, 100])
def test_frontier_root_equals_rfc6962_definition(n: int) -> None:
    leaves = [hashlib.sha256(b"\x00" + bytes([i % 256, i // 256])).digest() for i in range(n)]
    frontier = MerkleFrontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == merkle_root(leaves)
    assert sum(end - start + 1 for start, end in frontier.ranges()) == n


def test_rfc6962_known_answer() -> None:
    # Empty tree hash and a two-leaf tree, from RFC 6962 section 2.1.
    assert merkle_root([]).hex() == hashlib.sha256(b"").hexdigest()
    a, b = hashlib.sha256(b"\x00a").digest(), hashlib.sha256(b"\x00b").digest()
    assert merkle_root([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()


def test_a_new_home_is_covered_from_its_first_record(isolated_env: Path) -> None:
    with _home(isolated_env) as platform:
        assert _sizes(platform.settings) == [1]
        assert len(_copies(platform)) == 1
        report = verify_trail(platform)
    assert (report.status, report.records, report.checkpoints, report.copies) == (
        "valid",
        1,
        1,
        1,
    )


def test_defaults_keep_the_unprotected_tail_small() -> None:
    security = load_settings().security
    assert security.audit_checkpoint_every <= 20
    assert security.audit_checkpoint_seconds <= 5


def test_every_n_records(isolated_env: Path) -> None:
    with _home(isolated_env, audit_checkpoint_every=3, audit_checkpoint_seconds=3600) as platform:
        _projects(platform, 7)  # records 2..8
        assert _sizes(platform.settings) == [1, 4, 7]
    # Closing the platform covers what it appended since.
    assert _sizes(platform.settings) == [1, 4, 7, 8]
    assert len(list(LocalBlobStore(isolated_env / "artifacts").keys(COPY_PREFIX))) == 4


def test_every_t_seconds_by_the_clock(isolated_env: Path) -> None:
    with _home(isolated_env, audit_checkpoint_seconds=60) as platform:
        start = last_checkpoint(platform.settings)
        assert start is not None
        clock = Clock(start.when + timedelta(seconds=1))
        platform.checkpointer.clock = clock
        _projects(platform, 3, "early")
        assert _sizes(platform.settings) == [1]  # 1 s after the last one: not due
        clock.now = start.when + timedelta(seconds=61)
        _projects(platform, 1, "late")
        assert _sizes(platform.settings) == [1, 5]
        newest = last_checkpoint(platform.settings)
        assert newest is not None and newest.when == clock.now  # signed with the clock's time


def test_a_quiet_long_running_process_is_covered_by_its_timer(isolated_env: Path) -> None:
    with _home(isolated_env, audit_checkpoint_seconds=0.2) as platform:
        start = last_checkpoint(platform.settings)
        assert start is not None
        platform.checkpointer.clock = Clock(start.when)  # not due at commit time
        _projects(platform, 1)
        assert _sizes(platform.settings) == [1]
        # Nothing else is appended and the platform stays open: the timer signs.
        _wait(lambda: _sizes(platform.settings) == [1, 2], "the timer's checkpoint")


def test_a_process_that_never_closes_its_platform_is_covered_at_exit(
    isolated_env: Path,
) -> None:
    _home(isolated_env, audit_checkpoint_seconds=3600).close()
    script = (
        "from ghaf.platform import Platform\n"
        "from ghaf.projects import create_project\n"
        "from ghaf.settings import load_settings\n"
        "platform = Platform(load_settings())\n"
        "create_project(platform, platform.admin(), 'left-open')\n"
    )
    env = {**os.environ, "GHAF_SECURITY__AUDIT_CHECKPOINT_SECONDS": "3600"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    settings = load_settings(home=isolated_env)
    assert _sizes(settings) == [1, 2]


def test_the_copy_is_written_after_the_log_and_repaired_by_the_next_checkpoint(
    isolated_env: Path,
) -> None:
    with _home(isolated_env, audit_checkpoint_seconds=0) as platform:
        _projects(platform, 2)
        store = platform.checkpointer.copy_store()
        assert store is not None
        newest = _copies(platform)[-1]
        store.delete(newest)  # as if the process died between the log and the copy
        report = verify_trail(platform)
        assert report.status == "pending"
        (warning,) = report.warnings
        assert warning.message.startswith(
            "checkpoint log line 3 (size 3) is not in the artifact store yet (signed "
        )
        # An hour on, it is no crash a moment ago: a deleted copy.
        with platform.read_session() as session:
            an_hour_on = datetime.now(UTC) + timedelta(hours=1)
            later = verify_audit(platform.settings, session, copies=store, now=an_hour_on)
        assert later.problem == "checkpoint log line 3 (size 3) has no copy in the artifact store"
        _projects(platform, 1, "again")
        assert newest in _copies(platform)
        assert verify_trail(platform).status == "valid"


def test_a_torn_last_line_is_dropped_before_the_next_append(isolated_env: Path) -> None:
    with _home(isolated_env, audit_checkpoint_seconds=0) as platform:
        path = checkpoints_path(platform.settings)
        with path.open("ab") as log:
            log.write(b'{"torn": ')  # a machine crash mid-line: never acknowledged
        assert verify_trail(platform).status == "valid"
        _projects(platform, 1)
        lines = read_log(platform.settings)
        assert lines is not None and all(line.checkpoint for line in lines)
        assert path.read_bytes().endswith(b"\n")
        assert verify_trail(platform).status == "valid"


def test_a_checkpoint_is_never_signed_over_a_shrunk_log(isolated_env: Path) -> None:
    with _home(isolated_env, audit_checkpoint_seconds=3600) as platform:
        _projects(platform, 1)
        create_checkpoint(platform, platform.admin())
        path = checkpoints_path(platform.settings)
        whole = path.read_bytes()
        path.write_bytes(whole.splitlines(keepends=True)[0])
        with pytest.raises(IntegrityError, match=r"the checkpoint log .* shrank: this process"):
            platform.checkpointer.checkpoint()
        path.write_bytes(whole)  # put back: closing covers the checkpoint's own record
    assert verify_trail(platform).status == "valid"


def test_a_checkpoint_is_never_signed_when_the_log_is_gone_but_copies_remain(
    isolated_env: Path,
) -> None:
    with _home(isolated_env) as platform:
        _projects(platform, 1)
    checkpoints_path(platform.settings).unlink()
    with Platform(platform.settings) as again:
        with pytest.raises(IntegrityError, match="missing or empty but the artifact store"):
            again.checkpointer.checkpoint()
        with pytest.raises(IntegrityError, match="missing or empty but the artifact store"):
            init_home(again.settings).close()
    assert not checkpoints_path(platform.settings).exists()


def test_on_demand_checkpoint_copies_an_old_home_s_checkpoints(isolated_env: Path) -> None:
    with _home(isolated_env, audit_checkpoint_every=2, audit_checkpoint_seconds=3600) as platform:
        _projects(platform, 4)
        store = platform.checkpointer.copy_store()
        assert store is not None
        for key in _copies(platform):  # a home from before checkpoints were copied
            store.delete(key)
        report = verify_trail(platform)
        assert report.problem == "checkpoint log line 1 (size 1) has no copy in the artifact store"
        assert "`ghaf audit checkpoint` copies them" in report.failures[0].hint
        made = create_checkpoint(platform, platform.admin())
        assert made.size == _head(platform) - 1  # its own record comes after it
        assert len(_copies(platform)) == len(_sizes(platform.settings))
    with Platform(platform.settings) as reopened:
        assert verify_trail(reopened).status == "valid"


def test_an_unreachable_artifact_store_does_not_stop_the_log(isolated_env: Path) -> None:
    def outage() -> LocalBlobStore:
        raise BackendUnavailableError("artifact store down")

    with _home(isolated_env, audit_checkpoint_seconds=3600) as platform:
        _projects(platform, 2)
        signed = Checkpointer(platform.settings, platform.engine, copies=outage).checkpoint()
        assert signed.size == 3 and _sizes(platform.settings) == [1, 3]
        report = verify_trail(platform)
        assert report.status == "pending"  # the copy is missing, a moment ago
        assert report.warnings[0].message.startswith(
            "checkpoint log line 2 (size 3) is not in the artifact store yet"
        )
        _projects(platform, 1, "back")  # store reachable again: the next one repairs it
    with Platform(platform.settings) as reopened:
        assert verify_trail(reopened).status == "valid"
