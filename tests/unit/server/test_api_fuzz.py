"""Schemathesis against ``ghaf server`` as a real process: whatever a client sends, no 5xx,
statuses and content types as the OpenAPI document declares, and no route that answers
without a credential."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow


def test_no_request_gets_a_5xx_and_every_answer_conforms(
    platform: Platform, tmp_path: Path
) -> None:
    create_project(platform, platform.admin(), "fraud")
    token = mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud")
    server = ServerProcess(
        platform.settings.home,
        ("server", "--rate", "0"),
        "/health",
        tmp_path / "server.log",
    ).start()
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency: make venv installs it"
    try:
        done = subprocess.run(
            [
                st,
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance,ignored_auth",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "25",
                "--workers",
                "1",
                "--seed",
                "7",
                "--suppress-health-check",
                "all",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        log = server.stop()
    failures = done.stdout[done.stdout.find("FAILURES") :][:8000]  # the failing cases first
    assert done.returncode == 0, failures + done.stdout[-3000:] + done.stderr[-2000:]
    assert "Traceback" not in log
