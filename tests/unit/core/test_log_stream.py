"""Log lines go to the stderr of the moment, so a swapped-and-closed stream breaks nothing."""

from __future__ import annotations

import io
import sys

import pytest

from ghaf.logs import configure_logging, get_logger


def test_logging_follows_sys_stderr_after_a_runner_swaps_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    configure_logging("json", "INFO")  # as the CLI does inside a test runner's swap
    swapped.close()  # the runner closes its stream when the invocation ends
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    get_logger("test").warning("still logging", n=1)
    assert "still logging" in now.getvalue()
