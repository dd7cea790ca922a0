"""The root ``ghaf`` command: one table of groups and commands, no side-effect imports."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import typer

from ghaf.cli.main import COMMANDS

CLI = Path(__file__).resolve().parents[3] / "src" / "ghaf" / "cli"


def _ghaf(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_help_lists_exactly_the_table() -> None:
    done = _ghaf("--help")
    assert done.returncode == 0, done.stderr
    panel = done.stdout.split("Commands")[1]
    listed = re.findall(r"^│ (\S+)\s", panel, flags=re.MULTILINE)
    names = [name for name, _, _ in COMMANDS]
    assert len(set(names)) == len(names), "a command name is in the table twice"
    assert sorted(listed) == sorted(names)


def test_each_entry_is_a_group_or_a_plain_function() -> None:
    for name, target, _ in COMMANDS:
        module, _, attribute = target.partition(":")
        if importlib.util.find_spec(module) is None:
            assert name == "server", f"{name}: module {module} does not exist"  # being written
            continue
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, typer.Typer) or callable(command), name
        if isinstance(command, typer.Typer):
            assert command.registered_commands or command.registered_groups, name


def test_no_cli_module_adds_commands_to_the_root_app_on_import() -> None:
    offenders = []
    for path in sorted(CLI.glob("*.py")):
        if path.name == "main.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "ghaf.cli.main":
                offenders.append(path.name)
    assert offenders == [], f"these modules import the root app: {offenders}"


def test_a_table_command_runs_through_the_root_callback(tmp_path: Path) -> None:
    done = _ghaf("--home", str(tmp_path / "home"), "init")
    assert done.returncode == 0, done.stderr
    assert f"initialized Ghaf home at {tmp_path / 'home'}" in done.stdout.replace("\n", "")
    version = _ghaf("version")
    assert version.returncode == 0 and re.match(r"^\d+\.\d+", version.stdout)


def test_starting_the_cli_loads_no_model_framework_or_flavor() -> None:
    code = (
        "import sys, ghaf.cli.main\n"
        "heavy = ('torch', 'sklearn', 'lightgbm', 'xgboost', 'onnxruntime', 'ray',"
        " 'ghaf.models', 'ghaf.registry', 'ghaf.serving.runtimes')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_command_on_a_missing_home_says_to_run_init(tmp_path: Path) -> None:
    """A typo in --home is one line and exit 2 naming the fix, never a SQLite traceback,
    and it creates nothing where the typo points."""
    missing = tmp_path / "no-such-home"
    done = _ghaf("--home", str(missing), "models", "list")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == f"error: no Ghaf home at {missing}"
    assert "ghaf init" in done.stderr and "Traceback" not in done.stderr
    assert not missing.exists()
