"""``ghaf retention``: the retention rules, and a run that removes what expired."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="Retention: rules per classification, and runs that remove what expired.",
    no_args_is_help=True,
)


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"--now {text!r} is not an ISO 8601 time", hint="e.g. 2026-06-01T00:00:00+00:00"
        ) from exc
    if value.tzinfo is None:
        raise InvalidInputError("--now needs a time zone", hint="e.g. 2026-06-01T00:00:00+00:00")
    return value


@app.command("run")
def run(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Record what would go; remove nothing.")
    ] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Judge ages as of this time (ISO 8601).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Remove what is past its retention: prediction log files, dataset versions
    (crypto-shredded). Every run is audited and recorded.

    JSON: {"dry_run", "as_of", "rules", "expired": [{"kind", "name", "age_days",
    "limit_days", "digest"}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    when = _when(now)
    if client is not None:
        body: dict[str, Any] = {"dry_run": dry_run}
        if when is not None:
            body["now"] = when.isoformat()
        result = dict(client.post("/retention/run", body))
    else:
        from ghaf.privacy import run_retention

        plan = run_retention(cli.platform(), cli.actor(), now=when, dry_run=dry_run)
        result = {"dry_run": dry_run, **to_jsonable(plan.to_dict())}
    if output is Output.json:
        emit_json(result)
        return
    verb = "would remove" if dry_run else "removed"
    cli.console.print(f"retention as of {result['as_of']}: {verb} {len(result['expired'])}")
    for item in result["expired"]:
        cli.console.print(
            f"  {item['kind']} {escape(item['name'])}: {item['age_days']:.1f} days "
            f"(limit {item['limit_days']})"
        )


@app.command("show")
def show(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """The rules in force, what a run now would remove, and the latest runs.

    JSON: {"rules", "due": [...], "runs": [{"id", "ran_at", "as_of", "actor", "dry_run",
    "rules", "removed"}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        doc = dict(client.get("/retention"))
    else:
        from ghaf.privacy import list_retention_runs, plan_retention
        from ghaf.privacy.retention import retention_rules
        from ghaf.security.rbac import ALL_PROJECTS

        platform = cli.platform()
        platform.spine.authorizer.authorize(
            cli.actor(), "retention.read", "retention:home", ALL_PROJECTS
        )
        doc = to_jsonable(
            {
                "rules": retention_rules(platform),
                "due": plan_retention(platform).to_dict()["expired"],
                "runs": list_retention_runs(platform),
            }
        )
    if output is Output.json:
        emit_json(doc)
        return
    rules = doc["rules"]
    cli.console.print(
        f"prediction logs: {rules['prediction_log_days']} days; datasets: "
        + (", ".join(f"{k} {v} days" for k, v in rules["datasets"].items()) or "kept")
        + ("; latest versions kept" if rules["keep_latest"] else "")
    )
    cli.console.print(f"due now: {len(doc['due'])}")
    for item in doc["runs"]:
        dry = " (dry run)" if item["dry_run"] else ""
        cli.console.print(
            f"run {item['id']} at {item['ran_at']} by {escape(item['actor'])}{dry}: "
            f"{len(item['removed'])} removed"
        )
