"""Metrics shared by worker processes (no server): the files of several processes sum,
counters outlive their process and live gauges do not; the directory is private and
servers killed before their cleanup leave nothing behind at the next start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ghaf.errors import ConfigError
from ghaf.serving.metrics import (
    MULTIPROC_VARIABLE,
    Metrics,
    mark_worker_dead,
    shared_metrics_dir,
)

pytestmark = pytest.mark.slow  # five Python processes
WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from ghaf.serving.metrics import Metrics

    async def main(path, n, bad):
        m = Metrics("w", shared_dir=path)
        m.track_queue("fraud", "1", lambda: 3)
        for i in range(n):
            m.observe_request("fraud", "1", 500 if i < bad else 200, 0.002)
            m.observe_batch("fraud", "1", 4, 0.001)
        await asyncio.sleep(0)  # requests arrive on the loop; the flush waits for a pause

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    print(__import__("os").getpid())
    """
)
READER = textwrap.dedent(
    """
    import sys
    from ghaf.serving.metrics import Metrics
    print(Metrics("r", shared_dir=sys.argv[1]).render())
    """
)


def _python(code: str, path: Path, *args: str) -> str:
    env = {**os.environ, MULTIPROC_VARIABLE: str(path)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _value(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_workers_files_sum_and_counters_outlive_their_process(tmp_path: Path) -> None:
    with shared_metrics_dir(str(tmp_path)) as path:
        pids = [int(_python(WORKER, path, n, bad)) for n, bad in (("30", "2"), ("12", "1"))]
        text = _python(READER, path)
        assert _value(text, "ghaf_requests_total", code="200") == 39
        assert _value(text, "ghaf_requests_total", code="500") == 3
        assert _value(text, "ghaf_request_seconds_count", model="fraud") == 42
        assert _value(text, "ghaf_request_seconds_bucket", le="0.0025") == 42
        assert _value(text, "ghaf_batch_rows_sum") == 4 * 42
        assert _value(text, "ghaf_queue_rows", model="fraud") == 6  # both still "live"
        assert "worker=" not in text
        for pid in pids:
            mark_worker_dead(str(path), pid)
        after = _python(READER, path)
        assert _value(after, "ghaf_requests_total") == 42  # counters stay: totals never drop
        assert _value(after, "ghaf_queue_rows", model="fraud") == 0  # gauges went with them
    assert not path.exists()


def test_the_directory_is_private_and_orphans_are_removed(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f"ghaf-serve-metrics-{gone.stdout.strip()}-abc"
    orphan.mkdir()
    (orphan / "counter_1.db").write_bytes(b"x")
    running = tmp_path / f"ghaf-serve-metrics-{os.getpid()}-def"
    running.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / f"ghaf-serve-metrics-{gone.stdout.strip()}-link"
    link.symlink_to(target)
    with shared_metrics_dir(str(tmp_path)) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        assert not orphan.exists(), "a killed server's directory is removed"
        assert running.exists(), "a running server's directory is left alone"
        assert link.is_symlink() and target.exists(), "a link is never followed"
    assert not path.exists()


def test_a_worker_without_the_variable_is_refused(tmp_path: Path) -> None:
    code = "import sys; from ghaf.serving.metrics import Metrics; Metrics('0', sys.argv[1])"
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_VARIABLE}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, env=env, check=False)  # fmt: skip
    assert done.returncode != 0 and "PROMETHEUS_MULTIPROC_DIR" in done.stderr
    with pytest.raises(ConfigError):  # and here, where the variable is unset too
        Metrics("0", shared_dir=str(tmp_path))
