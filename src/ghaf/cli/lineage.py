"""``ghaf lineage``: what a node came from and what was made from it; OpenLineage events."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.tree import Tree

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json

if TYPE_CHECKING:
    from ghaf.platform import Platform

app = typer.Typer(
    help="Lineage of datasets, transforms, runs, models, deployments.", no_args_is_help=True
)


def _graph(platform: Platform, node: str) -> dict[str, Any]:
    from ghaf.lineage import downstream, edges_of, upstream

    edges = edges_of(platform, node)
    if not edges and not node.startswith("dataset:"):
        from ghaf.errors import NotFoundError

        raise NotFoundError(f"lineage node {node!r} has no edges", hint="check the node id")
    return {
        "node": node,
        "upstream": upstream(platform, node),
        "downstream": downstream(platform, node),
        "edges": [{"src": e.src, "dst": e.dst, "relation": e.relation} for e in edges],
    }


@app.command("show")
def show(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="e.g. dataset:transactions:1 or model:fraud:2")],
    upstream_only: Annotated[bool, typer.Option("--upstream", help="Only upstream.")] = False,
    downstream_only: Annotated[bool, typer.Option("--downstream", help="Only downstream.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Show the nodes upstream and downstream of NODE (against a server: those of your
    projects)."""
    cli = state(ctx)
    client = cli.remote()
    graph = client.lineage(node) if client is not None else _graph(cli.platform(), node)
    if downstream_only:
        graph["upstream"] = []
    if upstream_only:
        graph["downstream"] = []
    if output is Output.json:
        emit_json(graph)
        return
    tree = Tree(f"[bold]{node}[/]")
    if not downstream_only:
        branch = tree.add("upstream")
        for item in graph["upstream"]:
            branch.add(item)
    if not upstream_only:
        branch = tree.add("downstream")
        for item in graph["downstream"]:
            branch.add(item)
    cli.console.print(tree)


def _sink_events(platform: Platform, project: str | None, dataset: str | None) -> list[Any]:
    from ghaf.errors import NotFoundError

    url = platform.settings.lineage_url
    if url is not None and (url == "off" or url.startswith(("http://", "https://"))):
        raise NotFoundError(
            "this home keeps no OpenLineage events: they are sent to its lineage_url",
            hint="read them where lineage_url sends them",
        )
    path = (
        Path(url.removeprefix("file://"))
        if url
        else platform.settings.home / "lineage" / "openlineage.jsonl"
    )
    if not path.is_file():
        return []
    events = []
    for line in path.read_bytes().splitlines():
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line cut short by a crash while it was appended
        if project is not None and event.get("job", {}).get("namespace") != f"ghaf://{project}":
            continue
        if dataset is not None and not any(
            d.get("name", "").partition(":")[0] == dataset
            for d in (*event.get("inputs", ()), *event.get("outputs", ()))
        ):
            continue
        events.append(event)
    return events


@app.command("export")
def export(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Only events reading or writing it.")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Print the OpenLineage RunEvents of ingests and transforms, one JSON line each (for
    Marquez, DataHub...); against a server, those of your projects."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        events = client.openlineage_events(project=project, dataset=dataset)
    else:
        events = _sink_events(cli.platform(), project, dataset)
    if output is Output.json:
        emit_json({"events": events})
        return
    for event in events:
        typer.echo(orjson.dumps(event).decode())
