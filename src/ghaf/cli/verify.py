"""``ghaf verify PATH_OR_MODEL``: check a model's signature against the home's trust store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ghaf.cli.context import state
from ghaf.security.signing import verify_model_dir


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
    from ghaf.registry.download import download_model

    with tempfile.TemporaryDirectory(prefix="ghaf-verify-") as tmp:
        directory = download_model(platform, target, Path(tmp) / "model")
        files = verify_model_dir(platform.settings, directory)
    cli.console.print(f"verified model {target}: {len(files)} signed files, signature trusted")
