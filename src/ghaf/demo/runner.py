"""Run the demo's stages in order with a progress display, then print a summary table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ghaf.platform import Platform
from ghaf.settings import GhafSettings


@dataclass
class DemoContext:
    """What stages share: the settings, the open platform, a work directory, results."""

    settings: GhafSettings
    platform: Platform
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """One step of the demo; ``run`` returns a one-line summary for the table."""

    name: str
    run: Callable[[DemoContext], str]


@dataclass(frozen=True)
class StageResult:
    """How a stage went."""

    name: str
    seconds: float
    summary: str


def run_stages(
    settings: GhafSettings, stages: list[Stage], console: Console | None = None
) -> list[StageResult]:
    """Run ``stages`` against the home in ``settings``; stops at the first failure."""
    from ghaf.home import init_home

    console = console or Console()
    outcomes: list[StageResult] = []
    platform = init_home(settings)
    context = DemoContext(settings, platform, settings.home / "demo")
    context.workdir.mkdir(parents=True, exist_ok=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    try:
        with progress:
            task = progress.add_task("demo", total=len(stages))
            for stage in stages:
                progress.update(task, description=stage.name)
                started = time.perf_counter()
                summary = stage.run(context)
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
    return outcomes
