"""``ghaf features``: apply definitions, materialize, look up, check, serve."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="Feature store: definitions, materialization, serving.", no_args_is_help=True
)


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"--until {value!r} is not an ISO timestamp", hint="e.g. 2026-03-01T00:00:00+00:00"
        ) from exc
    if parsed.tzinfo is None:
        raise InvalidInputError(f"--until {value!r} has no timezone", hint="append +00:00")
    return parsed


@app.command("apply")
def apply(
    ctx: typer.Context,
    path: Path,
    force: Annotated[bool, typer.Option(help="Allow incompatible changes (audited).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the diff.")] = False,
) -> None:
    """Register the definitions in PATH (.py or .yaml) as new versions; shows the diff."""
    from ghaf.features.definitions import load_definitions
    from ghaf.features.registry import apply_definitions, plan_apply

    cli = state(ctx)
    platform = cli.platform()
    definitions = load_definitions(path)
    changes = plan_apply(platform, definitions)
    for change in changes:
        mark = {"create": "+", "update": "~", "unchanged": "="}[change.action]
        cli.console.print(f"{mark} {change.label} v{change.new_version}", highlight=False)
        if change.diff:
            cli.console.print(change.diff, highlight=False, markup=False)
        for problem in change.incompatible:
            cli.console.print(f"  [red]incompatible:[/] {problem}", highlight=False)
    if dry_run:
        return
    apply_definitions(platform, cli.actor(), definitions, source=str(path), force=force)
    changed = sum(c.action != "unchanged" for c in changes)
    cli.console.print(f"applied {changed} change(s)")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the latest version of every definition."""
    from ghaf.features.registry import list_definitions

    cli = state(ctx)
    table = Table("kind", "name", "version", "owner")
    for d in list_definitions(cli.platform()):
        table.add_row(d.kind, d.name, str(d.version), str(d.spec.get("owner", "")))
    cli.console.print(table)


@app.command("materialize")
def materialize_cmd(
    ctx: typer.Context,
    views: Annotated[list[str] | None, typer.Argument(help="Views (default: all).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO timestamp; default: now.")] = None,
    full: Annotated[bool, typer.Option(help="Rebuild instead of incremental.")] = False,
) -> None:
    """Write the latest feature values into the online store."""
    from ghaf.features.materialize import materialize

    cli = state(ctx)
    platform = cli.platform()
    results = materialize(platform, cli.actor(), views, until=_time(until), full=full)
    for r in results:
        sealed = ", pii sealed" if r.sealed else ""
        cli.console.print(
            f"{r.view} v{r.version}: {r.mode}{sealed}, {r.rows} rows until {r.watermark}"
        )


@app.command("get")
def get(
    ctx: typer.Context,
    features: Annotated[str, typer.Option(help="Comma-separated refs or a service name.")],
    entity: Annotated[list[str], typer.Option(help="KEY=VALUE (repeat for more rows).")],
) -> None:
    """Look up online features for entities, printed as JSON."""
    from ghaf.features.online import get_online_features

    cli = state(ctx)
    columns: dict[str, list[object]] = {}
    for item in entity:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InvalidInputError(
                f"--entity {item!r} is not KEY=VALUE", hint="e.g. customer_id=7"
            )
        columns.setdefault(key, []).append(int(raw) if raw.lstrip("-").isdigit() else raw)
    refs: list[str] | str = features.split(",") if ":" in features else features
    result = get_online_features(cli.platform(), columns, refs)
    typer.echo(orjson.dumps(result.to_dict()).decode())


@app.command("check")
def check(ctx: typer.Context, view: str) -> None:
    """Check that online values equal the offline point-in-time values at the watermark."""
    from ghaf.features.materialize import check_consistency

    cli = state(ctx)
    report = check_consistency(cli.platform(), view)
    cli.console.print(
        f"{view}: {report.checked} entities checked at {report.watermark}, "
        f"{len(report.mismatches)} mismatches"
    )
    if not report.ok:
        for m in report.mismatches:
            cli.console.print(m, highlight=False)
        raise typer.Exit(8)


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6566,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    max_body_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest request body, in MiB (413 beyond).")
    ] = 4.0,
    max_entities: Annotated[
        int, typer.Option(min=1, help="Most entity rows per request (413 beyond).")
    ] = 10_000,
    metrics_public: Annotated[
        bool, typer.Option("--metrics-public", help="Serve /metrics without credentials.")
    ] = False,
    insecure_dev: Annotated[
        bool,
        typer.Option(
            "--insecure-dev",
            help="Serve without authentication (loopback addresses only; logs a warning).",
        ),
    ] = False,
) -> None:
    """Serve online features over HTTP (JSON), with /health and /metrics.

    Every request needs Authorization: Bearer (a Ghaf API token or an OIDC JWT) whose
    roles allow features.read (features.read_pii for views classified pii) in the
    view's project; /metrics needs monitoring.read unless --metrics-public.
    """
    from ghaf.access.guard import RequestGuard, check_insecure_dev
    from ghaf.features.online import online_reader
    from ghaf.features.server import FeatureServer, serve

    if insecure_dev:
        check_insecure_dev(host, "feature server")  # before anything is opened or bound
    cli = state(ctx)
    platform = cli.platform()
    app = FeatureServer(
        online_reader(platform),
        guard=None if insecure_dev else RequestGuard(platform),
        metrics_public=metrics_public,
        max_body_bytes=int(max_body_mb * (1 << 20)),
        max_entities=max_entities,
    )
    serve(app, host=host, port=port, tls=platform.settings.tls)
