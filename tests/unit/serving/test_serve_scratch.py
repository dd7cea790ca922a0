"""``ghaf serve`` keeps its decrypted models in the home and leaves nothing behind: not
after SIGTERM, not after a failed start; after ``kill -9``, doctor and gc deal with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ghaf.artifacts.scratch import MARKER, SIGTERM_EXIT
from ghaf.platform import Platform
from tests.unit.serving.server_processes import ServerProcess, free_port, ghaf, register_champion


def _serving_dirs(home: Path) -> list[Path]:
    return sorted((home / "tmp").glob("serve-*"))


def _start(home: Path, log: Path, *extra: str) -> tuple[ServerProcess, Path]:
    server = ServerProcess(home, ("serve", "fraud@champion", *extra), "/v2/health/ready", log)
    server.start()
    (workdir,) = _serving_dirs(home)
    return server, workdir


def test_sigterm_removes_the_decrypted_model(
    platform: Platform, trained: Any, tmp_path: Path
) -> None:
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    home = platform.settings.home
    server, workdir = _start(home, tmp_path / "serve.log")
    try:
        assert server.process is not None
        assert (workdir / "fraud-1").is_dir()  # the verified, decrypted copy it serves
        assert f'"pid": {server.process.pid}' in (workdir / MARKER).read_text()
    finally:
        output = server.stop()
    assert server.process.returncode == SIGTERM_EXIT, output
    assert not workdir.exists()
    assert "Traceback" not in output


@pytest.mark.slow
def test_sigterm_to_the_supervisor_of_two_workers_removes_it(
    platform: Platform, trained: Any, tmp_path: Path
) -> None:
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    server, workdir = _start(platform.settings.home, tmp_path / "serve.log", "--workers", "2")
    output = server.stop()
    assert not workdir.exists(), output
    assert "Traceback" not in output


def test_kill_9_leaves_a_directory_that_doctor_reports_and_gc_removes(
    platform: Platform, trained: Any, tmp_path: Path
) -> None:
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    home = platform.settings.home
    server, workdir = _start(home, tmp_path / "serve.log")
    assert server.process is not None
    server.process.kill()
    server.process.wait(timeout=60)
    assert (workdir / "fraud-1").is_dir()  # no cleanup ran

    doctor = ghaf(home, "doctor", env={"COLUMNS": "400"})
    assert doctor.returncode == 9, doctor.stdout + doctor.stderr
    row = next(line for line in doctor.stdout.splitlines() if line.startswith("│ leftovers"))
    assert workdir.name in row and f"pid {server.process.pid} gone" in row
    assert "ghaf gc" in row

    gc = ghaf(home, "gc")
    assert gc.returncode == 0, gc.stderr
    assert workdir.name in gc.stdout
    assert not workdir.exists()
    assert ghaf(home, "doctor").returncode == 0


def test_a_failed_start_leaves_nothing(platform: Platform, trained: Any, tmp_path: Path) -> None:
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    home = platform.settings.home
    # The first model is downloaded and decrypted before the second is found missing.
    failed = ghaf(home, "serve", "fraud@champion", "nosuch@champion", "--port", str(free_port()))
    assert failed.returncode != 0
    assert "nosuch" in failed.stderr and "Traceback" not in failed.stderr
    assert _serving_dirs(home) == []
