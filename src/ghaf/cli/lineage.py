"""``ghaf lineage``: what a node came from and what was made from it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.tree import Tree

from ghaf.cli.context import state

app = typer.Typer(
    help="Lineage of datasets, transforms, runs, models, deployments.", no_args_is_help=True
)


@app.command("show")
def show(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="e.g. dataset:transactions:1 or model:fraud:2")],
    upstream_only: Annotated[bool, typer.Option("--upstream", help="Only upstream.")] = False,
    downstream_only: Annotated[bool, typer.Option("--downstream", help="Only downstream.")] = False,
) -> None:
    """Show the nodes upstream and downstream of NODE."""
    from ghaf.lineage import downstream, edges_of, upstream

    cli = state(ctx)
    platform = cli.platform()
    tree = Tree(f"[bold]{node}[/]")
    edges = edges_of(platform, node)
    if not edges and not node.startswith("dataset:"):
        from ghaf.errors import NotFoundError

        raise NotFoundError(f"lineage node {node!r} has no edges", hint="check the node id")
    if not downstream_only:
        branch = tree.add("upstream")
        for item in upstream(platform, node):
            branch.add(item)
    if not upstream_only:
        branch = tree.add("downstream")
        for item in downstream(platform, node):
            branch.add(item)
    cli.console.print(tree)
