"""``ghaf serve`` (real-time OIP v2 server) and ``ghaf predict`` (batch scoring)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from ghaf.cli.context import CliState, state
from ghaf.cli.main import app
from ghaf.errors import InvalidInputError


def _spec(cli: CliState, ref: str, flavor: str | None, workdir: Path) -> Any:
    """A local model directory (needs --flavor) or a registry reference (name@alias)."""
    from ghaf.serving.base import ModelSpec
    from ghaf.serving.models import resolve_model

    path = Path(ref)
    if path.is_dir():
        if flavor is None:
            raise InvalidInputError(
                f"{ref} is a directory: its flavor is unknown",
                hint="add --flavor skops (or onnx...)",
            )
        return ModelSpec(path.name, "1", flavor, path.resolve())
    return resolve_model(cli.platform(), ref, workdir)


@app.command()
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
) -> None:
    """Serve models over the Open Inference Protocol v2 (and POST /predict, /metrics)."""
    from ghaf.serving.server import ServeConfig, model_entry, serve_forever

    cli = state(ctx)
    workdir = Path(tempfile.mkdtemp(prefix="ghaf-serve-"))
    specs = [_spec(cli, ref, flavor, workdir) for ref in models]
    config = ServeConfig(
        models=[model_entry(s) for s in specs],
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        max_batch_rows=max_batch_rows,
        max_wait_ms=max_wait_ms,
        max_body_bytes=int(max_body_mb * (1 << 20)),
        log_dir=str(log_dir) if log_dir else None,
        home=str(cli.settings.home),
    )
    cli.console.print(f"serving {', '.join(s.name for s in specs)} on http://{host}:{port}")
    serve_forever(config, cli.platform())


@app.command()
def predict(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MODEL@ALIAS, MODEL:VERSION or a model dir.")],
    source: Annotated[Path, typer.Argument(help="Input Parquet or CSV file.")],
    output: Annotated[str, typer.Argument(help="Output .parquet/.csv file or dataset:NAME.")],
    flavor: Annotated[str | None, typer.Option(help="Flavor of a model directory.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Scoring threads.")] = None,
) -> None:
    """Score a file in batch: streamed, parallel, with progress; output atomically."""
    from ghaf.serving.batch import score_to_target

    cli = state(ctx)
    with tempfile.TemporaryDirectory(prefix="ghaf-predict-") as tmp:
        spec = _spec(cli, model, flavor, Path(tmp))
        stats = score_to_target(cli.platform(), spec, source, output, workers=workers)
    cli.console.print(f"scored {stats.rows:,} rows into {output}")
