"""``ghaf audit ship`` and ``ghaf audit sinks``: the audit trail delivered to log sinks."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json
from ghaf.errors import BackendUnavailableError, ConfigError, InvalidInputError


def _show_pass(cli: CliState, result: dict[str, Any], output: Output, *, quiet: bool) -> None:
    if output is Output.json:
        emit_json(result)
        return
    for done in result["sinks"]:
        if quiet and done["state"] in ("idle", "waiting", "busy", "disabled"):
            continue
        line = (
            f"{done['sink']}: {done['state']}, {done['shipped']} shipped, cursor {done['cursor']}"
        )
        if done["error"]:
            line += f" ({done['error']}; next try {done['next_attempt_at']})"
        cli.console.print(line, highlight=False, soft_wrap=True)
    if not result["sinks"] and not quiet:
        cli.console.print("no audit sinks configured (audit_shipping.sinks)")


def _pass_here(cli: CliState, *, force: bool) -> dict[str, Any]:
    from ghaf.shipping import ship_once

    return ship_once(cli.platform(), cli.actor(), force=force).to_json()


def ship(
    ctx: typer.Context,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop/--once",
            help="--once (default): one pass now, backoff or not; --loop: a pass every "
            "--every until --for is over or Ctrl-C, each sink retried by its backoff.",
        ),
    ] = False,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            help="With --loop: time between passes (default: the "
            "audit_shipping.interval_s setting).",
        ),
    ] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="With --loop: stop after this long (e.g. 1h).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Deliver the audit records each sink (audit_shipping.sinks) has not acknowledged.

    A sink's cursor advances only after it acknowledged a batch, so a sink that is down
    loses nothing: the next pass sends from where it stopped. --once exits 9 when a sink
    did not acknowledge. JSON (one document per pass): {shipped, sinks: [{sink, state,
    shipped, cursor, error, next_attempt_at}]}.
    """
    from ghaf.monitoring.schedule import parse_duration

    cli = state(ctx)
    client = cli.remote()
    if not loop:
        result = client.ship_audit() if client is not None else _pass_here(cli, force=True)
        _show_pass(cli, result, output, quiet=False)
        failed = [s for s in result["sinks"] if s["state"] == "failed"]
        if failed:
            first = failed[0]
            raise BackendUnavailableError(
                f"audit sink {first['sink']} did not acknowledge: {first['error']}",
                hint="its cursor stays where it was; the next pass sends from there "
                "(ghaf audit sinks shows the lag)",
            )
        return
    if client is not None:
        raise ConfigError(
            "ghaf audit ship --loop runs on a home; a server ships by itself",
            hint="run it where the home is, or use --once against the server",
        )
    pause = float(parse_duration(every, "--every")) if every else None
    if pause is not None and not 1 <= pause <= 3600:
        raise InvalidInputError(f"--every {every} is out of range", hint="use 1s to 1h")
    if pause is None:
        pause = cli.settings.audit_shipping.interval_s
    until = time.time() + parse_duration(for_, "--for") if for_ else None
    while True:
        _show_pass(cli, _pass_here(cli, force=False), output, quiet=output is not Output.json)
        if until is not None and time.time() >= until:
            return
        time.sleep(pause if until is None else max(0.0, min(pause, until - time.time())))


def sinks(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Each audit sink: its cursor, how far behind the trail it is, its last error.

    Lag counts the records after the cursor (the shipper's own audit.ship records aside,
    which go out with the next batch). JSON: {sinks: [{sink, kind, url, enabled,
    configured, cursor, head, lag, lag_seconds, shipped, last_shipped_at, attempts,
    next_attempt_at, last_error, last_error_at}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.audit_sinks()
    else:
        from ghaf.access.authorize import authorize_read
        from ghaf.shipping import sink_status
        from ghaf.shipping.shipper import HOME_WIDE

        platform = cli.platform()
        authorize_read(platform, cli.actor(), "audit.sinks.read", "audit:sinks", HOME_WIDE)
        found = {"sinks": [s.to_json() for s in sink_status(platform)]}
    if output is Output.json:
        emit_json(found)
        return
    if not found["sinks"]:
        cli.console.print("no audit sinks configured (audit_shipping.sinks)")
        return
    table = Table(
        "sink", "url", "cursor", "head", "lag", "lag (s)", "shipped", "attempts", "last error"
    )
    for s in found["sinks"]:
        table.add_row(
            s["sink"]
            + ("" if s["enabled"] else " (disabled)")
            + ("" if s["configured"] else " (not configured)"),
            s["url"],
            str(s["cursor"]),
            str(s["head"]),
            str(s["lag"]),
            f"{s['lag_seconds']:.0f}",
            str(s["shipped"]),
            str(s["attempts"]),
            s["last_error"] or "",
        )
    cli.console.print(table)
