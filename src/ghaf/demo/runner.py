"""Run the demo's stages in order with a progress display, then print a summary table."""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ghaf.demo.state import DemoState
from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.settings import GhafSettings

T = TypeVar("T")


@dataclass
class DemoEnv:
    """What every stage may use that is no stage's output: the settings, the open
    platform, a work directory, and ``resources``, closed when the demo ends (a stage
    that starts a server registers its stop there, so later stages can still call it)."""

    settings: GhafSettings
    platform: Platform
    workdir: Path
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


StageRun = Callable[[DemoEnv, DemoState], tuple[DemoState, str]]
"""A stage: the state so far in, the state with its own result added and its summary out."""


@dataclass(frozen=True)
class Stage:
    """One step of the demo; ``run`` adds its typed result to the state."""

    name: str
    run: StageRun


@dataclass(frozen=True)
class StageResult:
    """How a stage went."""

    name: str
    seconds: float
    summary: str


def need(value: T | None, what: str) -> T:
    """``value``, the output of an earlier stage; a clear error when that stage did not run.

    Raises:
        InvalidInputError: naming the missing output and the stage that makes it.
    """
    if value is None:
        raise InvalidInputError(
            f"this stage needs {what}", hint="run the stage that makes it first (ghaf demo)"
        )
    return value


def run_stages(
    settings: GhafSettings, stages: list[Stage], console: Console | None = None
) -> tuple[list[StageResult], DemoState]:
    """Run ``stages`` against the home in ``settings``; stops at the first failure."""
    from ghaf.home import init_home

    console = console or Console()
    outcomes: list[StageResult] = []
    platform = init_home(settings)
    env = DemoEnv(settings, platform, settings.home / "demo")
    env.workdir.mkdir(parents=True, exist_ok=True)
    state = DemoState()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    try:
        with env.resources, progress:
            task = progress.add_task("demo", total=len(stages))
            for stage in stages:
                progress.update(task, description=stage.name)
                started = time.perf_counter()
                state, summary = stage.run(env, state)
                outcomes.append(StageResult(stage.name, time.perf_counter() - started, summary))
                progress.advance(task)
    finally:
        platform.close()
    table = Table(title="Ghaf demo", show_lines=False)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    for outcome in outcomes:
        table.add_row(outcome.name, f"{outcome.seconds:.2f}", outcome.summary)
    console.print(table)
    console.print(f"home: {settings.home}")
    home = shlex.quote(str(settings.home))
    console.print(
        f"browse it: ghaf server --home {home}   then open the link that "
        f"`ghaf ui login-link --home {home}` prints (http://127.0.0.1:8700/ui/)"
    )
    return outcomes, state
