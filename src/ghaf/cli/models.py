"""``ghaf models``: the registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(help="Model registry: versions, aliases, approvals, cards.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """List registered models (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        models = client.models()
    else:
        # Two columns of two tables: read without opening the platform (its audit, RBAC
        # policy and stores) or the ORM, so the list answers at once (issue 18).
        from ghaf.registry.listing import list_models_at

        models = [
            {"name": name, "latest": latest, "project": project}
            for name, latest, project in list_models_at(cli.settings.resolved_metadata_url)
        ]
    if output is Output.json:
        emit_json({"models": models})
        return
    table = Table("name", "latest version", "project")
    for model in models:
        table.add_row(model["name"], str(model["latest"]), model["project"])
    cli.console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:3 or NAME@alias")],
    output: OutputOption = Output.table,
) -> None:
    """Show a model's versions (NAME) or one version (NAME:3, NAME@alias)."""
    from ghaf.registry.base import SUMMARY_FIELDS

    cli = state(ctx)
    one = ":" in ref or "@" in ref
    client = cli.remote()
    if client is not None:
        found = (
            [client.model_version(ref)]
            if one
            else client.get(f"/models/{ref}/versions")["versions"]
        )
    else:
        from ghaf.registry import get_model_version, list_versions

        platform = cli.platform()
        versions = [get_model_version(platform, ref)] if one else list_versions(platform, ref)
        found = to_jsonable(versions)
    summaries = [{k: v[k] for k in SUMMARY_FIELDS} for v in found]
    if output is Output.json:
        emit_json({"versions": summaries})
        return
    table = Table("version", "stage", "flavor", "aliases", "signed", "approvals", "run", "by")
    for v in summaries:
        table.add_row(
            str(v["version"]),
            v["stage"],
            v["flavor"],
            ", ".join(v["aliases"]),
            "yes" if v["signed"] else "no",
            ", ".join(v["approvals"]),
            (v["run_id"] or "")[:8],
            v["created_by"],
        )
    cli.console.print(table)


@app.command("register")
def register(
    ctx: typer.Context,
    name: str,
    source: Annotated[str, typer.Argument(help="Model directory, model file, or run:<id>/<path>.")],
    description: Annotated[str, typer.Option(help="Intended use, for the card.")] = "",
    lineage: Annotated[
        list[str] | None,
        typer.Option(
            "--lineage",
            help="What it was trained on: dataset:NAME:V, feature_view:NAME:V, run:ID... "
            "(repeatable); its tags decide where the model may be stored.",
        ),
    ] = None,
) -> None:
    """Register a new version from a model directory, a model file or a run's artifact.

    Residency is checked (the lineage given and the run's inputs) before any file is
    stored; a refusal is audited as a denied model.register.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        if source.startswith("run:"):
            raise InvalidInputError(
                "against a server, register a local model directory or file, not a run's "
                f"artifact ({source})",
                hint="download the artifact with the SDK (client.download_run_artifacts), then "
                "register the local files",
            )
        made = client.register_model(
            name,
            Path(source),
            project=cli.settings.project,
            description=description,
            lineage=list(lineage or ()),
        )
    else:
        from ghaf.lineage.graph import check_node
        from ghaf.registry import register_model

        nodes = [check_node(node) for node in lineage or ()]
        target: str | Path = source if source.startswith("run:") else Path(source)
        made = to_jsonable(
            register_model(
                cli.platform(), cli.actor(), name, target, description=description, lineage=nodes
            )
        )
    signed = "signed" if made["signed"] else "unsigned"
    cli.console.print(f"registered {made['name']}:{made['version']} ({made['flavor']}, {signed})")


@app.command("alias")
def alias(ctx: typer.Context, name: str, alias_name: str, version: int) -> None:
    """Point NAME@ALIAS at VERSION."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        moved = client.set_alias(name, alias_name, version)
        ref = f"{moved['name']}:{moved['version']}"
    else:
        from ghaf.registry import set_alias

        ref = set_alias(cli.platform(), cli.actor(), name, alias_name, version).ref
    cli.console.print(f"{name}@{alias_name} -> {ref}")


@app.command("approve")
def approve(
    ctx: typer.Context, ref: str, comment: Annotated[str, typer.Option(help="Why.")] = ""
) -> None:
    """Approve a version for production (you must not be its author)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        approved = client.approve_model_version(ref, comment=comment)
        done, who = f"{approved['name']}:{approved['version']}", client.whoami()["name"]
    else:
        from ghaf.registry import approve_model_version

        done = approve_model_version(cli.platform(), cli.actor(), ref, comment=comment).ref
        who = cli.actor().name
    cli.console.print(f"approved {done} by {who}")


@app.command("promote")
def promote(
    ctx: typer.Context,
    ref: str,
    stage: Annotated[str, typer.Argument(help="staging, production or archived")],
) -> None:
    """Move a version along candidate -> staging -> production -> archived."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        moved = client.transition_model_version(ref, stage)
        done, now = f"{moved['name']}:{moved['version']}", moved["stage"]
    else:
        from ghaf.registry import transition_model_version

        version = transition_model_version(cli.platform(), cli.actor(), ref, stage)
        done, now = version.ref, version.stage
    cli.console.print(f"{done} is now {now}")


@app.command("card")
def card(
    ctx: typer.Context,
    ref: str,
    html: Annotated[Path | None, typer.Option("--html", help="Write the card as HTML.")] = None,
    edit: Annotated[
        Path | None, typer.Option("--edit", help="Replace the card with this Markdown file.")
    ] = None,
) -> None:
    """Print a version's model card (Markdown); write HTML; or replace it from a file."""
    from ghaf.errors import NotFoundError
    from ghaf.registry import get_model_version, update_model_card
    from ghaf.registry.card import render_html

    cli = state(ctx)
    platform = cli.platform()
    if edit is not None:
        if not edit.is_file():
            raise NotFoundError(f"card file {edit} does not exist", hint="check the path")
        version = update_model_card(platform, cli.actor(), ref, edit.read_text())
    else:
        version = get_model_version(platform, ref)
    if html is not None:
        html.write_text(render_html(version.card, f"Model card: {version.ref}"))
        cli.console.print(f"wrote {html}")
    else:
        typer.echo(version.card)


@app.command("import-mlflow")
def import_mlflow(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An MLflow model directory (with MLmodel).")],
    name: Annotated[str, typer.Option("--name", help="Registered model name.")],
    architecture: Annotated[
        Path | None,
        typer.Option(help="PyTorch: the layers as a JSON/YAML file (data, no code runs)."),
    ] = None,
    code: Annotated[
        Path | None,
        typer.Option(help="PyTorch: a .py file whose build() returns the module (custom code)."),
    ] = None,
    entry_point: Annotated[str | None, typer.Option("--entry-point", hidden=True)] = None,
) -> None:
    """Import an MLflow model: re-saved in a safe format, registered and signed."""
    from ghaf.errors import InvalidInputError
    from ghaf.registry.mlflow_import import import_mlflow_model

    if entry_point is not None:
        raise InvalidInputError(
            "--entry-point is no longer accepted: a model never imports code named by a string",
            hint="pass --architecture FILE (layers as data) or --code FILE (custom code stored "
            "in the model; the project's code policy must allow it)",
        )
    cli = state(ctx)
    platform = cli.platform()
    version = import_mlflow_model(
        platform, cli.actor(), path, name, architecture=architecture, code=code
    )
    cli.console.print(f"imported {path} as {version.ref} ({version.flavor})")


glass = typer.Typer(
    help="Break-glass: past the release policy in an emergency, with a reason and a second person.",
    no_args_is_help=True,
)
app.add_typer(glass, name="break-glass")


def _target(request: dict[str, Any]) -> str:
    """``MODEL:VERSION@alias`` or ``MODEL:VERSION to stage S``, from the API's shape."""
    ref = f"{request['model']}:{request['version']}"
    if request["target_kind"] == "alias":
        return f"{ref}@{request['target']}"
    return f"{ref} to stage {request['target']}"


@glass.command("request")
def glass_request(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME:VERSION to release.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, in words (required).")],
    alias: Annotated[str | None, typer.Option("--alias", help="Protected alias to move.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Protected stage.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Ask to put a version on a protected alias or stage past the policy (2 people).

    JSON: the request {"id", "model", "version", "target_kind", "target", "reason",
    "requested_by", "requested_at", "status", "confirmed_by"}.
    """
    from ghaf.registry.base import parse_ref

    cli = state(ctx)
    parsed = parse_ref(ref)
    if parsed.version is None:
        raise InvalidInputError(f"{ref!r} names no version", hint="give NAME:VERSION, e.g. fraud:3")
    client = cli.remote()
    if client is not None:
        made = client.request_break_glass(
            parsed.name, parsed.version, reason=reason, alias=alias, stage=stage
        )
    else:
        from ghaf.registry import get_model_version
        from ghaf.registry.break_glass import request_break_glass

        platform = cli.platform()
        # Asked in the model's project, as the server does (not the home's default one).
        project = get_model_version(platform, f"{parsed.name}:{parsed.version}").project
        made = to_jsonable(
            request_break_glass(
                platform.in_project(project),
                cli.actor(),
                parsed.name,
                parsed.version,
                reason=reason,
                alias=alias,
                stage=stage,
            )
        )
    if output is Output.json:
        emit_json(made)
        return
    cli.console.print(
        f"break-glass request {made['id']}: {_target(made)}; a second person confirms it "
        f"with `ghaf models break-glass confirm {made['id']}`",
        highlight=False,
    )


@glass.command("confirm")
def glass_confirm(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(help="Request id.")],
    output: OutputOption = Output.table,
) -> None:
    """Carry out a pending break-glass request (you must not be its requester).

    JSON: the version it moved, as `ghaf models show NAME:VERSION` lists it.
    """
    from ghaf.registry.base import SUMMARY_FIELDS

    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        version = client.confirm_break_glass(request_id)
        who = str(client.whoami()["name"])
    else:
        from ghaf.registry.break_glass import confirm_break_glass

        done = confirm_break_glass(cli.platform(), cli.actor(), request_id)
        version = to_jsonable({k: getattr(done, k) for k in SUMMARY_FIELDS})
        who = cli.actor().name
    if output is Output.json:
        emit_json(version)
        return
    cli.console.print(
        f"break-glass {request_id} done by {who}: {version['name']}:{version['version']} "
        f"(aliases: {', '.join(version['aliases']) or '-'}; stage {version['stage']})",
        highlight=False,
    )


@glass.command("list")
def glass_list(
    ctx: typer.Context,
    pending: Annotated[bool, typer.Option("--pending", help="Only pending ones.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """List break-glass requests, newest first (against a server: of your projects).

    JSON: {"requests": [request, as `break-glass request` prints it]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        requests = client.break_glass_requests(pending_only=pending)
    else:
        from ghaf.registry.break_glass import list_break_glass

        requests = to_jsonable(list_break_glass(cli.platform(), pending_only=pending))
    if output is Output.json:
        emit_json({"requests": requests})
        return
    table = Table("id", "target", "status", "requested by", "confirmed by", "reason")
    for r in requests:
        table.add_row(
            str(r["id"]),
            _target(r),
            r["status"],
            r["requested_by"],
            r["confirmed_by"] or "",
            r["reason"],
        )
    cli.console.print(table)
