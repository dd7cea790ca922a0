"""``ghaf`` starts at once: a command's module, and its libraries, load only when it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ghaf.cli.main import COMMANDS, app, load_command

HEAVY = ("sklearn", "skops", "torch", "duckdb", "pyarrow", "pandas", "numpy", "polars")
HEAVY += ("sqlalchemy",)
"""Libraries that cost a tenth of a second or more to import, or load model code."""


def _imported(*args: str) -> set[str]:
    """The top-level packages a whole ``ghaf ARGS`` process imports (``-X importtime``)."""
    return {module.split(".")[0] for module in _modules(*args)}


def _modules(*args: str) -> set[str]:
    """Every module a whole ``ghaf ARGS`` process imports (``-X importtime``)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.split("|")[2].strip() for line in lines[1:]}


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    imported = _imported("--help")
    assert {"typer", "ghaf"} <= imported  # the probe sees imports at all
    assert sorted(imported & set(HEAVY)) == []
    assert not imported & {"structlog", "cryptography"}


def test_models_list_on_a_fresh_home_loads_no_model_framework_or_data_library(
    tmp_path: Path,
) -> None:
    home = str(tmp_path / "home")
    _imported("--home", home, "init")
    modules = _modules("--home", home, "models", "list")
    assert "ghaf.registry.listing" in modules and "sqlite3" in modules  # it read the registry
    assert sorted({m.split(".")[0] for m in modules} & set(HEAVY)) == []
    # On a home the list is one query on the SQLite file (issue 18: under 0.5 s): no
    # SQLAlchemy, no platform (audit, RBAC policy, stores), no ORM tables.
    platform = {"ghaf.platform", "ghaf.registry.tables", "ghaf.security.rbac", "yaml"}
    assert sorted(modules & platform) == []


def test_every_command_of_the_table_answers_its_help() -> None:
    runner = CliRunner()
    for name, _, _ in COMMANDS:
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert result.exit_code == 0, (name, result.output, result.exception)
        assert f"ghaf {name}" in result.output


def test_each_help_line_of_the_table_opens_the_commands_own() -> None:
    """The listing may shorten a command's first paragraph, never say something else."""
    for name, target, help_line in COMMANDS:
        command = load_command(name, target)
        own = " ".join((command.help or "").split("\n\n")[0].split())
        assert own.startswith(help_line.removesuffix(".")), (name, own)
