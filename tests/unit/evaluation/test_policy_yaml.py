"""A gate policy file that YAML cannot read is the user's mistake: one line, the line number.

PyYAML raises a ``ReaderError`` (no mark, a position) for a character it refuses, such as
a control character pasted from a terminal; it used to escape ``parse_policy`` as a
traceback in ``ghaf gate policies add``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.errors import ConfigError
from ghaf.evaluation.policy import parse_policy
from ghaf.platform import Platform


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name: x\nmetrics:\n  auc: {min: 0.7\x01}\n", 3, "character #x0001"),
        ("\x9c", 1, "character #x009c"),
        ("name: x\n\n\n# \x07 bell\n", 4, "special characters are not allowed"),
        ("name: x\nmetrics: [\n", 3, "expected the node content"),
    ],
)
def test_any_yaml_error_is_a_config_error_naming_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "gate.yaml")
    assert info.value.headline.startswith(f"gate.yaml:{line}: not valid YAML: ")
    assert words in info.value.headline


def test_the_cli_refuses_an_unprintable_policy_in_one_line(
    platform: Platform, tmp_path: Path
) -> None:
    bad = tmp_path / "gate.yaml"
    bad.write_text("name: production\nmetrics:\n  auc: {min: 0.75}\x01\n")
    command = ("gate", "policies", "add", str(bad))
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(platform.settings.home), *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{bad}:3: not valid YAML: character #x0001" in done.stderr.splitlines()[0]
