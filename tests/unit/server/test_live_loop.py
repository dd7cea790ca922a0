"""The live loop runs in one of a server's workers at a time: the others wait on the
home's lock and one takes over when the holder stops (here: two loop threads of one
process, each with its own open lock file, as two workers would hold them); its passes
run the home's retention once a day."""

from __future__ import annotations

import time

from ghaf.platform import Platform
from ghaf.privacy import list_retention_runs
from ghaf.server.live import LiveLoopThread


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_worker_runs_the_loop_and_another_takes_over_when_it_stops(
    platform: Platform,
) -> None:
    first = LiveLoopThread(platform, every_s=0.1).start()
    second = LiveLoopThread(platform, every_s=0.1)
    try:
        _wait(lambda: first.state["passes"] >= 2, "the first loop's passes")
        second.start()
        passes = first.state["passes"]
        _wait(lambda: first.state["passes"] >= passes + 3, "more passes of the first")
        assert not second.state["running"] and second.state["passes"] == 0
        # The home's chores: retention ran at the first pass, and is not due again today.
        [ran] = list_retention_runs(platform)
        assert ran["actor"] == platform.admin().name and not ran["dry_run"]
        first.stop()
        assert not first.state["running"]
        _wait(lambda: second.state["passes"] >= 1, "the second loop taking over")
        assert second.state["running"] and second.state["last_error"] is None
    finally:
        first.stop()
        second.stop()
