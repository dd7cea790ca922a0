"""``ghaf demo``: the whole loop on the embedded defaults, in a fresh home."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ghaf.cli.context import state
from ghaf.settings import SETTINGS_FILE, load_settings

DEMO_REGION = "ae-auh-1"
RETRAINING = "ghaf.demo.retraining_pipeline:PIPELINE"
"""The pipeline the demo's retraining policy names: an operator declares it."""


def demo(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Home to run in (default: a new temporary directory)."),
    ] = None,
) -> None:
    """Run every stage of the scenario end to end and print a summary."""
    from ghaf.demo.runner import run_stages
    from ghaf.demo.stages import STAGES

    cli = state(ctx)
    target = home or Path(tempfile.mkdtemp(prefix="ghaf-demo-"))
    # The scenario is a UAE bank: its data is tagged pii/resident:ae, so its stores
    # live in an ae-* region (residency is enforced on every write). A new (empty) home
    # records the region in its ghaf.toml, so every later `ghaf --home` command agrees
    # with it; an existing home's configuration is left as it is.
    target.mkdir(parents=True, exist_ok=True)
    if not any(target.iterdir()):
        (target / SETTINGS_FILE).write_text(
            f'artifact_region = "{DEMO_REGION}"\npipelines = ["{RETRAINING}"]\n', encoding="utf-8"
        )
    settings = load_settings(
        home=target,
        artifact_region=DEMO_REGION,
        pipelines=[RETRAINING],  # the closed loop's retraining pipeline, declared
        log_format=cli.settings.log_format,
        log_level=cli.settings.log_level,
    )
    run_stages(settings, STAGES, cli.console)
