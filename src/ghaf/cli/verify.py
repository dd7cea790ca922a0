"""``ghaf verify PATH_OR_MODEL``: check a model's signature against the home's trust store.

``--output json`` prints ``{"target", "files": [signed paths], "trusted": true,
"release": {"model", "version", "project", "files"} | null}``; a refusal prints
nothing on stdout and exits 8.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ghaf.cli.context import state

if TYPE_CHECKING:
    from ghaf.security.signing import SignedDir


class Output(StrEnum):
    text = "text"
    json = "json"


def verify(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="A model directory, or a registered model: NAME[:VERSION].")
    ],
    output: Annotated[
        Output, typer.Option("--output", "-o", help="text for people, json for scripts.")
    ] = Output.text,
) -> None:
    """Verify a model's files against its signature, and what it is signed for; exit 8 on
    any mismatch (a registered version must be signed for its own name, version and project).
    """
    from ghaf.artifacts.scratch import scratch_dir
    from ghaf.security.signing import verify_signed_dir  # cryptography, model-signing

    cli = state(ctx)
    platform = cli.platform()
    path = Path(target)
    if path.is_dir():
        signed = verify_signed_dir(platform.settings, path)
        label = str(path)
    else:
        from ghaf.registry.download import download_model

        with scratch_dir(platform.settings.home, "verify-") as tmp:
            # download_model checks the release against the registry entry or raises
            directory = download_model(platform, target, tmp / "model")
            signed = verify_signed_dir(platform.settings, directory)
        label = f"model {target}"
    if output is Output.json:
        release = signed.release.to_json() if signed.release else None
        body = {"target": target, "files": sorted(signed.files), "trusted": True}
        typer.echo(json.dumps({**body, "release": release}, indent=2, sort_keys=True))
        return
    cli.console.print(
        f"verified {escape(label)}: {len(signed.files)} signed files, signature trusted; "
        + escape(_claim(signed)),
        highlight=False,
    )


def _claim(signed: SignedDir) -> str:
    if signed.release is None:
        return "it names no release (ghaf-release.json): files only, for no model or version"
    return f"signed for {signed.release.describe()}"
