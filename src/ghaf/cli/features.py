"""``ghaf features``: apply definitions, materialize, retrieve training sets, look up,
check, serve.

Against a server (``GHAF_URL``) apply, list, materialize and retrieve print what they
print on the home; materializations and retrievals run there as jobs the command waits
for. Online lookups go to the feature server (``ghaf features serve``), not the control
plane.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

if TYPE_CHECKING:
    from ghaf.features.definitions import Definition
    from ghaf.features.registry import Change
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


def _document(path: Path) -> dict[str, Any]:
    """The definitions of PATH as the definitions YAML document the server takes."""
    if path.suffix in (".yaml", ".yml") and path.is_file():
        import yaml

        return dict(yaml.safe_load(path.read_text()) or {})
    from ghaf.features.definitions import load_definitions

    document: dict[str, list[dict[str, Any]]] = {}
    for item in load_definitions(path):
        spec = item.spec()
        kind = spec.pop("kind")
        if kind == "on_demand_feature_view":
            raise InvalidInputError(
                f"on-demand feature view {item.name!r} holds a Python function, which does "
                "not travel to a server",
                hint="apply it on the home (unset GHAF_URL); send the other definitions as YAML",
            )
        if kind == "feature_view":
            spec.pop("join_keys")
            spec.pop("key_dtypes")
        document.setdefault(f"{kind}s" if kind != "entity" else "entities", []).append(spec)
    return document


def _print_plan(cli: CliState, changes: list[dict[str, Any]]) -> None:
    for change in changes:
        mark = {"create": "+", "update": "~", "unchanged": "="}[change["action"]]
        label = f"{change['kind']} {change['name']}"  # as Change.label writes it
        cli.console.print(f"{mark} {label} v{change['new_version']}", highlight=False)
        if change["diff"]:
            cli.console.print(change["diff"], highlight=False, markup=False)
        for problem in change["incompatible"]:
            cli.console.print(f"  [red]incompatible:[/] {problem}", highlight=False)


def _changes(changes: list[Change]) -> list[dict[str, Any]]:
    return list(to_jsonable(changes))


@app.command("apply")
def apply(
    ctx: typer.Context,
    path: Path,
    force: Annotated[bool, typer.Option(help="Allow incompatible changes (audited).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the diff.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Register the definitions in PATH (.py or .yaml) as new versions; shows the diff.

    Against a server, feature views must read datasets (dataset:NAME); file paths, SQL
    transforms and on-demand views are applied on the home.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        if not path.is_file():
            raise InvalidInputError(
                f"definitions file {path} does not exist", hint="check the path"
            )
        document = _document(path)
        planned = client.apply_features(
            document, force=force, dry_run=True, source=str(path), project=cli.settings.project
        )
        if output is Output.table:
            _print_plan(cli, planned["changes"])
        answer = planned
        if not dry_run:
            answer = client.apply_features(
                document, force=force, source=str(path), project=cli.settings.project
            )
    else:
        from ghaf.features.definitions import load_definitions
        from ghaf.features.registry import apply_definitions, plan_apply

        platform = cli.platform()
        definitions: list[Definition] = load_definitions(path)
        plan = _changes(plan_apply(platform, definitions))
        if output is Output.table:
            _print_plan(cli, plan)
        answer = {
            "project": platform.default_project,
            "dry_run": True,
            "changes": plan,
            "applied": 0,
        }
        if not dry_run:
            changes = _changes(
                apply_definitions(platform, cli.actor(), definitions, source=str(path), force=force)
            )
            applied = sum(c["action"] != "unchanged" for c in changes)
            answer = {**answer, "dry_run": False, "changes": changes, "applied": applied}
    if output is Output.json:
        emit_json(answer)
    elif not dry_run:
        cli.console.print(f"applied {answer['applied']} change(s)")


@app.command("list")
def list_(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """List the latest version of every definition (against a server: those you may read)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.feature_definitions()
    else:
        from ghaf.features.registry import list_definitions

        platform = cli.platform()
        found = [
            {
                "kind": d.kind,
                "name": d.name,
                "version": d.version,
                "spec": d.spec,
                "project": d.project,
            }
            for d in list_definitions(platform)
        ]
    if output is Output.json:
        emit_json({"definitions": found})
        return
    table = Table("kind", "name", "version", "project", "owner")
    for d in found:
        owner = str(d["spec"].get("owner", ""))
        table.add_row(d["kind"], d["name"], str(d["version"]), d["project"], owner)
    cli.console.print(table)


@app.command("materialize")
def materialize_cmd(
    ctx: typer.Context,
    views: Annotated[list[str] | None, typer.Argument(help="Views (default: all).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO timestamp; default: now.")] = None,
    full: Annotated[bool, typer.Option(help="Rebuild instead of incremental.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Write the latest feature values into the online store (a job on a server)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        job = client.materialize(views, until=_time(until), full=full, project=cli.settings.project)
        results = job["result"]["materializations"]
    else:
        from ghaf.features.materialize import materialize

        platform = cli.platform()
        results = []
        for r in materialize(platform, cli.actor(), views, until=_time(until), full=full):
            result = to_jsonable(r)
            if r.sealed:  # a pii view's statistics would show its values' range in clear
                result["stats"] = None
            results.append(result)
    if output is Output.json:
        emit_json({"materializations": results})
        return
    for r in results:
        sealed = ", pii sealed" if r["sealed"] else ""
        watermark = datetime.fromisoformat(r["watermark"])
        cli.console.print(
            f"{r['view']} v{r['version']}: {r['mode']}{sealed}, {r['rows']} rows until {watermark}"
        )


def _entity_table(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(
            f"the entity rows are not a readable Parquet file: {exc}",
            hint="upload a Parquet file with the join keys and the timestamp column",
        ) from exc


@app.command("retrieve")
def retrieve(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Training set (dataset) to save.")],
    features: Annotated[str | None, typer.Option(help="Comma-separated view:feature refs.")] = None,
    service: Annotated[str | None, typer.Option(help="A feature service instead.")] = None,
    entities: Annotated[
        Path | None, typer.Option(help="Parquet file of entity rows (keys, timestamps).")
    ] = None,
    entity_dataset: Annotated[
        str | None, typer.Option(help="Or a dataset (NAME or NAME:V) holding them.")
    ] = None,
    timestamp_column: Annotated[str, typer.Option(help="Entity rows' time column.")] = "event_ts",
    full_feature_names: Annotated[bool, typer.Option(help="Name columns view__feature.")] = False,
    download: Annotated[
        Path | None, typer.Option(help="Also write the training set (Parquet) here.")
    ] = None,
    on: Annotated[
        str,
        typer.Option(
            help="Where the join runs: local, ray (the cluster at GHAF_RAY_ADDRESS, else a "
            "new local node) or ray://HOST:PORT (the Ray head's address)."
        ),
    ] = "local",
    output: OutputOption = Output.table,
) -> None:
    """Point-in-time features for entity rows, saved as a training set (a job on a server)."""
    if (features is None) == (service is None):
        raise InvalidInputError("name exactly one of --features and --service")
    if (entities is None) == (entity_dataset is None):
        raise InvalidInputError("name exactly one of --entities and --entity-dataset")
    wanted: list[str] | str = features.split(",") if features is not None else str(service)
    cli = state(ctx)
    from ghaf.pipelines.ray_target import ray_target

    ray_target(on, cli.settings.ray_address, option="--on")
    client = cli.remote()
    if client is not None:
        if on != "local":
            raise InvalidInputError(
                "--on applies to a join run here, not to a server's retrieval job",
                hint="leave --on out when a server is configured",
            )
        if entities is not None and not entities.is_file():
            raise InvalidInputError(f"entity file {entities} does not exist", hint="check the path")
        job = client.retrieve(
            name,
            features=wanted if isinstance(wanted, list) else None,
            feature_service=wanted if isinstance(wanted, str) else None,
            entities=entities,
            entity_dataset=entity_dataset,
            project=cli.settings.project,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
        )
        saved = job["result"]["training_set"]
        if download is not None:
            client.download_training_set(job["id"], download)
    else:
        from ghaf.data import dataset_parquet_path, read_dataset
        from ghaf.features.retrieval import get_historical_features, save_training_set

        platform = cli.platform()
        frame = (
            _entity_table(entities)
            if entities is not None
            else read_dataset(platform, str(entity_dataset))
        )
        rows = get_historical_features(
            platform,
            frame,
            wanted,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            on=on,
        )
        version = save_training_set(platform, cli.actor(), name, rows, wanted)
        saved = {
            "name": version.name,
            "version": version.version,
            "rows": version.num_rows,
            "digest": version.digest,
            "size": version.size,
            "columns": version.schema.names,
            "column_tags": version.column_tags,
        }
        if download is not None:
            shutil.copyfile(dataset_parquet_path(platform, f"{name}:{version.version}"), download)
    if output is Output.json:
        emit_json({"training_set": saved})
        return
    cli.console.print(
        f"saved training set {saved['name']}:{saved['version']}: {saved['rows']} rows, "
        f"{len(saved['columns'])} columns"
        + (f"; written to {download}" if download is not None else "")
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
