"""``ghaf`` starts at once: a command's module, and its libraries, load only when it runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghaf.cli.exit_codes import exit_code_for
from ghaf.cli.main import COMMANDS, app, load_command
from ghaf.errors import NotFoundError

HEAVY = ("sklearn", "skops", "torch", "duckdb", "pyarrow", "pandas", "numpy", "polars")
HEAVY += ("sqlalchemy",)
"""Libraries that cost a tenth of a second or more to import, or load model code."""


def _imported(*args: str) -> set[str]:
    """The top-level packages a whole ``ghaf ARGS`` process imports (``-X importtime``)."""
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
    return {line.split("|")[2].strip().split(".")[0] for line in lines[1:]}


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
    imported = _imported("--home", home, "models", "list")
    assert "sqlalchemy" in imported  # it did read the registry
    assert sorted(imported & set(HEAVY) - {"sqlalchemy"}) == []


def test_every_command_of_the_table_answers_its_help() -> None:
    runner = CliRunner()
    for name, target, _ in COMMANDS:
        module = target.partition(":")[0]
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        if importlib.util.find_spec(module) is None:  # a command whose module is not here yet
            assert isinstance(result.exception, NotFoundError), (name, result.output)
            assert module in result.exception.headline
        else:
            assert result.exit_code == 0, (name, result.output, result.exception)
            assert f"ghaf {name}" in result.output


def test_each_help_line_of_the_table_opens_the_commands_own() -> None:
    """The listing may shorten a command's first paragraph, never say something else."""
    for name, target, help_line in COMMANDS:
        if importlib.util.find_spec(target.partition(":")[0]) is None:
            with pytest.raises(NotFoundError):  # the module is not here yet: nothing to compare
                load_command(name, target)
            continue
        command = load_command(name, target)
        own = " ".join((command.help or "").split("\n\n")[0].split())
        assert own.startswith(help_line.removesuffix(".")), (name, own)


def test_a_missing_command_module_is_one_error_with_an_exit_code() -> None:
    with pytest.raises(NotFoundError) as caught:
        load_command("ghost", "ghaf.cli.no_such_command:ghost")
    assert "ghost" in caught.value.headline and "ghaf.cli.no_such_command" in caught.value.headline
    assert exit_code_for(caught.value) == 4


def test_a_command_module_missing_a_library_is_not_reported_as_a_missing_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "broken_cli"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cmd.py").write_text("import no_such_library_for_ghaf\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        load_command("broken", "broken_cli.cmd:run")
    assert caught.value.name == "no_such_library_for_ghaf"


def test_a_missing_command_prints_one_line_and_exits_with_its_code(tmp_path: Path) -> None:
    """Through ``run()``, as a user meets it: a table entry whose module is absent."""
    code = (
        "import sys\n"
        "from ghaf.cli import main\n"
        "main.COMMANDS = (*main.COMMANDS, ('ghost', 'ghaf.cli.no_such_command:ghost', 'x'))\n"
        "sys.argv = ['ghaf', '--home', sys.argv[1], 'ghost', '--help']\n"
        "main.run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=120,
    )
    assert done.returncode == 4, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: the command 'ghost' is not available"), done.stderr
    assert lines[1].startswith("  hint:") and len(lines) == 2
