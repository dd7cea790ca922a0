"""``ghaf verify PATH_OR_MODEL``: check a model's signature against the home's trust store."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ghaf.cli.context import state
from ghaf.cli.main import app
from ghaf.errors import NotFoundError
from ghaf.security.signing import verify_model_dir


@app.command()
def verify(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="A model directory, or a registered model: NAME[:VERSION].")
    ],
) -> None:
    """Verify a model's files against its signature; exit 8 on any mismatch."""
    cli = state(ctx)
    platform = cli.platform()
    path = Path(target)
    if path.is_dir():
        files = verify_model_dir(platform.settings, path)
        cli.console.print(f"verified {path}: {len(files)} signed files, signature trusted")
        return
    try:
        registry = importlib.import_module("ghaf.registry.download")
    except ImportError as exc:
        raise NotFoundError(
            f"{target!r} is not a directory, and the model registry is not installed",
            hint="pass a model directory",
        ) from exc
    with tempfile.TemporaryDirectory(prefix="ghaf-verify-") as tmp:
        directory = registry.download_model(platform, target, Path(tmp) / "model")
        files = verify_model_dir(platform.settings, directory)
    cli.console.print(f"verified model {target}: {len(files)} signed files, signature trusted")
