"""Settings: sources in order, nested env, ghaf.toml in the home, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.errors import ConfigError
from ghaf.settings import load_settings


def test_defaults_live_in_the_home(isolated_env: Path) -> None:
    settings = load_settings()
    assert settings.home == isolated_env.resolve()
    assert settings.resolved_metadata_url == f"sqlite:///{isolated_env.resolve() / 'ghaf.db'}"
    assert settings.resolved_artifact_url == (isolated_env.resolve() / "artifacts").as_uri()
    assert settings.event_bus_url == "memory://"
    assert settings.security.encrypt_artifacts is True


def test_arguments_beat_environment_beat_toml(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_env.mkdir(parents=True)
    (isolated_env / "ghaf.toml").write_text(
        'project = "from-toml"\nartifact_region = "ae-auh-1"\nlog_level = "DEBUG"\n'
        "[security]\naudit_checkpoint_every = 7\n"
    )
    monkeypatch.setenv("GHAF_PROJECT", "from-env")
    monkeypatch.setenv("GHAF_SECURITY__ENCRYPT_ARTIFACTS", "false")
    settings = load_settings(log_level="WARNING")
    assert settings.project == "from-env"
    assert settings.artifact_region == "ae-auh-1"
    assert settings.log_level == "WARNING"
    assert settings.security.encrypt_artifacts is False
    assert settings.security.audit_checkpoint_every == 7


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("GHAF_ARTIFACT_REGION", "EU West!", "GHAF_ARTIFACT_REGION"),
        ("GHAF_EVENT_BUS_URL", "kafka://x", "memory:// or nats://"),
        ("GHAF_METADATA_URL", "mysql://x", "postgresql+psycopg"),
        ("GHAF_LOG_FORMAT", "xml", "GHAF_LOG_FORMAT"),
        ("GHAF_SECURITY__AUDIT_CHECKPOINT_EVERY", "0", "GHAF_SECURITY__AUDIT_CHECKPOINT_EVERY"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert expected in message
    assert repr(value) in message or value in message


def test_unknown_key_in_toml_is_named(isolated_env: Path) -> None:
    isolated_env.mkdir(parents=True)
    (isolated_env / "ghaf.toml").write_text('artefact_url = "file:///tmp"\n')
    with pytest.raises(ConfigError, match="unknown setting 'artefact_url'"):
        load_settings()


def test_malformed_toml_is_a_config_error(isolated_env: Path) -> None:
    isolated_env.mkdir(parents=True)
    (isolated_env / "ghaf.toml").write_text("project = \n")
    with pytest.raises(ConfigError, match=r"ghaf\.toml"):
        load_settings()


def test_cli_bad_setting_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHAF_LOG_LEVEL", "LOUD")
    result = subprocess.run(
        [sys.executable, "-m", "ghaf", "doctor"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "GHAF_LOG_LEVEL" in lines[0] and "'LOUD'" in lines[0]
    assert "Traceback" not in result.stderr
