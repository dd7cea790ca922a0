"""``ghaf serve`` (real-time OIP v2 server) and ``ghaf predict`` (batch scoring)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ghaf.cli.context import CliState, state
from ghaf.errors import InvalidInputError


def _spec(
    cli: CliState, ref: str, flavor: str | None, workdir: Path, *, serving: bool = True
) -> Any:
    """A registry reference (name@alias), or a model directory (with --flavor) that a
    trusted key signed: both are verified before anything is loaded."""
    from ghaf.serving.models import local_model, resolve_model

    path = Path(ref)
    if path.is_dir():
        if flavor is None:
            raise InvalidInputError(
                f"{ref} is a directory: its flavor is unknown",
                hint="add --flavor skops (or onnx...)",
            )
        return local_model(cli.settings, path, flavor)
    return resolve_model(cli.platform(), ref, workdir, serving=serving)


def serve(
    ctx: typer.Context,
    models: Annotated[list[str], typer.Argument(help="MODEL@ALIAS, MODEL:VERSION or a model dir.")],
    flavor: Annotated[str | None, typer.Option(help="Flavor of a model directory.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (share the port).")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="Math-library threads per worker.")] = 1,
    max_batch_rows: Annotated[int, typer.Option(min=1, help="Largest batch scored.")] = 4096,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="Hold small batches open.")] = 0.0,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body.")] = 8.0,
    log_dir: Annotated[Path | None, typer.Option(help="Parquet prediction log directory.")] = None,
    entity_key: Annotated[
        str | None, typer.Option(help="Records may give this id instead of features.")
    ] = None,
    features: Annotated[
        list[str] | None,
        typer.Option(help="Online feature refs (view:feature) or a service, for --entity-key."),
    ] = None,
    shadow: Annotated[
        str | None, typer.Option(help="A version that also scores each request, logged only.")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Deployment record name (default: the first model's).")
    ] = None,
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
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            help="ray://HOST:PORT: deploy on that Ray cluster's Serve (autoscaling from "
            "serving.ray settings); its proxy listens on --host/--port.",
        ),
    ] = None,
) -> None:
    """Serve models over the Open Inference Protocol v2 (and POST /predict, /metrics).

    Every request but /v2/health/* needs Authorization: Bearer (a Ghaf API token or an
    OIDC JWT) allowed model.predict in the model's project (model.read for metadata,
    monitoring.read for /metrics unless --metrics-public).
    """
    from ghaf.access.guard import check_insecure_dev
    from ghaf.artifacts.scratch import scratch_dir, sigterm_exits
    from ghaf.serving.server import ServeConfig, model_entry, serve_forever, tls_settings

    if insecure_dev:
        check_insecure_dev(host, "model server")  # refused before anything is resolved or bound
    if on is not None:
        from ghaf.pipelines.ray_target import head_address

        on = head_address(on)  # a bad value is refused before anything is resolved
    cli = state(ctx)
    if (entity_key is None) != (not features):
        raise InvalidInputError(
            "--entity-key and --features go together",
            hint="e.g. --entity-key customer_id --features customer_behaviour:spend_7d",
        )
    lookup = None
    if entity_key is not None and features:
        refs: list[str] | str = (
            features[0] if len(features) == 1 and ":" not in features[0] else features
        )
        lookup = {"entity_key": entity_key, "refs": refs}
    # The decrypted models live in the home, and go on every way out: an error while
    # starting, Ctrl-C, or SIGTERM (`kill`, a service manager).
    with sigterm_exits(), scratch_dir(cli.settings.home, "serve-") as workdir:
        specs = [_spec(cli, ref, flavor, workdir) for ref in models]
        entries = [model_entry(s, features=lookup) for s in specs]
        shadow_spec = None if shadow is None else _spec(cli, shadow, flavor, workdir)
        if shadow_spec is not None:
            entries.append(model_entry(shadow_spec, shadow=True))
        registered = [ref for ref in models if not Path(ref).is_dir()]
        watch: dict[str, str] = {}
        recorder = None
        if registered:
            from ghaf.serving.deployments import record_deployment

            record = record_deployment(
                cli.platform(),
                cli.actor(),
                deployment or specs[0].name,
                registered,
                shadow=shadow,
            )
            cli.console.print(
                f"deployment {record.name} revision {record.revision}: {record.status}"
            )
            watch = {specs[0].name: record.name}  # workers follow its revisions live
            from ghaf.serving.metering import deployment_recorder

            recorder = deployment_recorder(  # its cost: replicas, CPU, memory, predictions
                cli.platform().in_project(record.project),
                cli.actor(),
                record.name,
                specs[0].name,
                workers=workers,
                threads=threads,
            )
        config = ServeConfig(
            models=entries,
            host=host,
            port=port,
            workers=workers,
            threads=threads,
            max_batch_rows=max_batch_rows,
            max_wait_ms=max_wait_ms,
            max_body_bytes=int(max_body_mb * (1 << 20)),
            log_dir=str(log_dir) if log_dir else None,
            home=str(cli.settings.home),
            insecure_dev=insecure_dev,
            metrics_public=metrics_public,
            watch=watch,
            workdir=str(workdir),
        )
        if on is not None:
            from ghaf.serving.ray_serve import model_ref, serve_on_ray

            placed = [model_ref(s, r, features=lookup) for s, r in zip(specs, models, strict=True)]
            if shadow_spec is not None and shadow is not None:
                placed.append(model_ref(shadow_spec, shadow, shadow=True))
            serve_on_ray(cli, on, config, placed, name=deployment or specs[0].name)
            return
        scheme = "https" if tls_settings(cli.platform(), host).cert_file else "http"
        cli.console.print(f"serving {', '.join(s.name for s in specs)} on {scheme}://{host}:{port}")
        serve_forever(config, cli.platform(), recorder)


def predict(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MODEL@ALIAS, MODEL:VERSION or a model dir.")],
    source: Annotated[str, typer.Argument(help="Input Parquet or CSV file, or dataset:NAME[:V].")],
    output: Annotated[str, typer.Argument(help="Output .parquet/.csv file or dataset:NAME.")],
    flavor: Annotated[str | None, typer.Option(help="Flavor of a model directory.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Scoring threads.")] = None,
    classification: Annotated[
        list[str] | None,
        typer.Option(
            "--classification",
            help="A tag of the input file's data (pii, sensitive, resident:ae); repeatable.",
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="Region an output file will be stored in (default: the home's "
            "artifact_region when its artifact store is a local directory)."
        ),
    ] = None,
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            help="Where to score: local (threads here, the default), ray (the Ray cluster "
            "at GHAF_RAY_ADDRESS, else a new local node) or ray://HOST:PORT (the head). On Ray "
            "every node reads the Parquet input at its path and scores its share.",
        ),
    ] = None,
) -> None:
    """Score a file or dataset in batch: streamed, parallel, with progress; output atomically.

    The scores carry the input's tags and the model's; their residency is checked
    against the output's region before anything is written, and the output is audited
    (dataset.write for dataset:NAME, prediction.export for a file).
    """
    if flavor is not None:  # before anything else is imported: see preload
        from ghaf.serving.runtimes import preload

        preload(flavor)
    from ghaf.artifacts.scratch import scratch_dir
    from ghaf.serving.outputs import score_to_target

    cli = state(ctx)
    with scratch_dir(cli.settings.home, "predict-") as workdir:
        spec = _spec(cli, model, flavor, workdir, serving=False)
        stats = score_to_target(
            cli.platform(),
            cli.actor(),
            spec,
            source,
            output,
            classification=classification or (),
            region=region,
            workers=workers,
            on=on,
        )
    cli.console.print(f"scored {stats.rows:,} rows into {output}")
