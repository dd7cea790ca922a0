"""``ghaf gc``: remove what crashes left behind in the home (``ghaf doctor`` lists it)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from ghaf.cli.context import state


class Output(StrEnum):
    table = "table"
    json = "json"


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="table for people, json for scripts.")
    ] = Output.table,
) -> None:
    """Remove crash leftovers: scratch directories of processes that are gone, files in
    <home>/tmp that nothing has touched for an hour, and partial artifact writes.

    A directory whose process still runs, and a blob a writer holds, are never removed.
    JSON: {"dry_run": bool, "removed": [{"path", "kind", "size", "age_s", "pid"}],
    "bytes": total size removed, "in_use": [{"path", "pid", "host"}]}; with --dry-run,
    "removed" lists what would be.
    """
    from ghaf.artifacts.leftovers import find_leftovers, format_size, remove_leftovers

    cli = state(ctx)
    removed = remove_leftovers(cli.settings, dry_run=dry_run)
    _, in_use = find_leftovers(cli.settings)
    total = sum(item.size for item in removed)
    if output is Output.json:
        doc = {
            "dry_run": dry_run,
            "removed": [item.to_json() for item in removed],
            "bytes": total,
            "in_use": [{"path": str(u.path), "pid": u.pid, "host": u.host} for u in in_use],
        }
        typer.echo(json.dumps(doc))
        return
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        cli.console.print(f"{verb} {item.describe()}", highlight=False, soft_wrap=True)
    if removed:
        cli.console.print(f"{verb} {len(removed)} leftovers, {format_size(total)}")
    else:
        cli.console.print("nothing to remove: no crash leftovers")
    for use in in_use:
        cli.console.print(
            f"kept {use.path}: in use by pid {use.pid} on {use.host}",
            highlight=False,
            soft_wrap=True,
        )
