"""``ghaf runs``: list, show, compare and download tracked runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable

app = typer.Typer(help="Tracked runs: list, show, compare, download.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    filter_: Annotated[
        str,
        typer.Option("--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.model = 'lgbm'\""),
    ] = "",
    experiment: Annotated[list[str] | None, typer.Option("--experiment", "-e")] = None,
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", help="e.g. 'metrics.auc desc'")
    ] = None,
    max_results: Annotated[int, typer.Option("--max", help="Runs per page.")] = 50,
    page_token: Annotated[str | None, typer.Option("--page-token")] = None,
    output: OutputOption = Output.table,
) -> None:
    """List runs matching a filter."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        page = client.get(
            "/runs",
            filter=filter_ or None,
            experiment=experiment,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
        )
    else:
        from ghaf.tracking import search_runs

        found = search_runs(
            cli.platform(),
            filter_,
            experiments=experiment,
            order_by=order_by or (),
            max_results=max_results,
            page_token=page_token,
        )
        page = {"runs": to_jsonable(found.runs), "next_page_token": found.next_page_token}
    if output is Output.json:
        emit_json(page)
        return
    table = Table("run id", "experiment", "name", "status", "user", "started", "metrics")
    for run in page["runs"]:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run["metrics"].items())[:4])
        table.add_row(
            run["run_id"],
            run["experiment"],
            run["name"],
            run["status"],
            run["user"],
            _when(run["start_time"]),
            metrics,
        )
    cli.console.print(table)
    if page["next_page_token"]:
        cli.console.print(f"next page: --page-token {page['next_page_token']}")


def _when(iso: str) -> str:
    """``2026-12-07 02:27:08`` from an ISO-8601 time."""
    return iso[:19].replace("T", " ")


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: str,
    env: Annotated[bool, typer.Option("--env")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Show one run: params, latest metrics, tags, inputs, artifacts."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        run = client.get_run(run_id)
    else:
        from ghaf.tracking import get_run

        run = to_jsonable(get_run(cli.platform(), run_id))
    if output is Output.json:
        emit_json(run)
        return
    cli.console.print(
        f"run {run['run_id']} ({run['status']}) {run['name']} in {run['experiment']} "
        f"by {run['user']}, started {_when(run['start_time'])}"
        + (f", parent {run['parent_run_id']}" if run["parent_run_id"] else "")
    )
    table = Table("kind", "key", "value")
    for key, value in sorted(run["params"].items()):
        table.add_row("param", key, value)
    for key, number in sorted(run["metrics"].items()):
        table.add_row("metric", key, f"{number:.6g}")
    for key, value in sorted(run["tags"].items()):
        table.add_row("tag", key, value)
    for node in run["inputs"]:
        table.add_row("input", node, "")
    for path, digest in sorted(run["artifacts"].items()):
        table.add_row("artifact", path, digest[:16])
    cli.console.print(table)
    if env:
        cli.console.print_json(json.dumps({k: v for k, v in run["env"].items() if k != "packages"}))


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write an HTML page with metric curves.")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Compare runs side by side; optionally write an HTML page with metric curves."""
    from ghaf.errors import InvalidInputError
    from ghaf.tracking.compare import compare_table

    if len(run_ids) < 2:
        raise InvalidInputError("compare needs at least two run ids", hint="ghaf runs list")
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        if html is not None:
            raise InvalidInputError(
                "--html draws metric curves from the home's full histories",
                hint="unset GHAF_URL to write the page on the home, or drop --html",
            )
        runs = [client.get_run(r) for r in run_ids]
    else:
        from ghaf.tracking import get_run

        runs = [to_jsonable(get_run(cli.platform(), r, with_env=False)) for r in run_ids]
    if output is Output.json:
        emit_json({"runs": runs})
    else:
        header, rows = compare_table(runs)
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        cli.console.print(table)
    if html is not None:
        from ghaf.tracking.compare import compare_html

        html.write_text(compare_html(cli.platform(), run_ids))
        if output is Output.table:
            cli.console.print(f"wrote {html}")


@app.command("download")
def download(
    ctx: typer.Context,
    run_id: str,
    path: Annotated[str, typer.Argument(help="An artifact file or directory of the run.")],
    dest: Annotated[Path, typer.Option("--dest", help="Directory to write into.")] = Path(),
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            help="Against a server whose artifacts are on S3: fetch each file from the bucket "
            "through a short-lived presigned URL and decrypt it here (the server is asked "
            "for one file's key, never the bytes). Otherwise the server streams it.",
        ),
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Download a run's artifact file, or every file under an artifact directory.

    Each file is checked against its SHA-256 before it appears under its name.
    JSON: {"run_id", "path", "local"}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        local = client.download_run_artifacts(run_id, path, dest, direct=direct)
    else:
        from ghaf.tracking import download_artifacts

        local = download_artifacts(cli.platform(), run_id, path, dest)
    if output is Output.json:
        emit_json({"run_id": run_id, "path": path, "local": str(local)})
        return
    cli.console.print(f"downloaded {path} of run {run_id} to {local}")
