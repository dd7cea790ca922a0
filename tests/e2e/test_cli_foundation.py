"""The CLI as a user types it: init, doctor, projects, version; errors are one line + exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


def ghaf(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@dataclass(frozen=True)
class Home:
    """A home that ``ghaf init`` made, and what that first init printed."""

    path: Path
    first_init: subprocess.CompletedProcess[str]

    def ghaf(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return ghaf(*args, env={**(env or {}), "GHAF_HOME": str(self.path)})


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """One initialized home for the tests that read it or add a project of their own."""
    path = tmp_path_factory.mktemp("cli-foundation") / "home"
    with pytest.MonkeyPatch.context() as patch:  # nothing from the outside, as isolated_env
        for key in list(os.environ):
            if key.startswith("GHAF_") and not key.startswith("GHAF_TEST_"):
                patch.delenv(key)
        first = ghaf("init", env={"GHAF_HOME": str(path)})
    assert first.returncode == 0, first.stderr
    return Home(path, first)


def test_init_is_idempotent_and_doctor_is_happy(home: Home) -> None:
    assert str(home.path) in home.first_init.stdout
    again = home.ghaf("init")
    assert again.returncode == 0, again.stderr
    doctor = home.ghaf("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    for name in ("metadata", "artifacts", "events", "disk"):
        assert name in doctor.stdout
    assert "FAIL" not in doctor.stdout


def test_doctor_names_the_broken_backend_and_the_fix(home: Home) -> None:
    result = home.ghaf("doctor", env={"GHAF_EVENT_BUS_URL": "nats://127.0.0.1:1"})
    assert result.returncode == 9
    assert "FAIL" in result.stdout and "events" in result.stdout
    assert "memory://" in result.stdout  # the fix
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_before_init_says_run_init(isolated_env: Path) -> None:
    result = ghaf("doctor")
    assert result.returncode == 9
    assert "ghaf init" in result.stdout


def test_projects_create_list_and_bad_input(home: Home) -> None:
    created = home.ghaf("projects", "create", "fraud", "--region", "ae-auh-1")
    assert created.returncode == 0, created.stderr
    duplicate = home.ghaf("projects", "create", "fraud")
    assert duplicate.returncode == 5
    assert "already exists" in duplicate.stderr and "Traceback" not in duplicate.stderr
    bad = home.ghaf("projects", "create", "Bad Name")
    assert bad.returncode == 3
    assert "project name 'Bad Name' is invalid" in bad.stderr
    listed = home.ghaf("projects", "list")
    assert listed.returncode == 0
    assert listed.stdout.count("fraud") == 1 and "ae-auh-1" in listed.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = ghaf("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


@pytest.mark.parametrize("fmt", ["json", "human"])
def test_version_and_log_format(fmt: str) -> None:
    result = ghaf("--log-format", fmt, "version")
    assert result.returncode == 0
    assert result.stdout.strip() == "0.1.0"


def test_init_with_an_unusable_home_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = ghaf("--home", str(blocker / "home"), "init")
    assert result.returncode == 2
    assert "cannot create the home" in result.stderr
    assert "Traceback" not in result.stderr
    assert blocker.read_text() == "not a directory"
