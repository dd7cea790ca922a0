"""Issue 20's cost of assignment and logging: W4 with an experiment of two variants vs
W4 with one model, in the same run, through the same server (wrk, 32 connections).

The experiment arm serves two versions of the W4 model with a running experiment's
sticky assignment (salt + the ``x-ghaf-unit`` header, a different unit per request,
20% holdout) and logs unit, variant, experiment and revision; the anchor arm serves the
one model with the same prediction log. A third arm runs the experiment's path with
both variants on one version (one batcher): the per-request cost of assignment and
logging alone, apart from scoring two models' batches. Target: >= 0.9x the anchor.
The assignment is applied as the deployment record's revision would apply it (the
watcher's one indexed lookup a second is not part of the per-request cost).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._serving_apps import home_of
from benchmarks.common import Figure
from benchmarks.serving import (
    SIZES,
    _bodies,
    _free_port,
    _ghaf_headers,
    _parse_wrk,
    _start,
    _stop,
    train_w4,
)


def serve(model_dir: str, port: int, mode: str, log_dir: str) -> None:
    """Child process: the W4 server, with one model (``one``) or an experiment (``ab``)."""
    from ghaf.platform import Platform
    from ghaf.serving.server import (
        ServeConfig,
        build_app,
        freeze_startup_heap,
        reuseport_socket,
        uvicorn_server,
    )
    from ghaf.serving.traffic import Assignment, Route, TrafficSplit
    from ghaf.settings import load_settings

    home = home_of(Path(model_dir))
    entry = {"name": "w4", "flavor": "skops", "path": model_dir}
    versions = ["1"] if mode == "one" else ["1", "2"]
    config = ServeConfig(
        models=[{**entry, "version": v} for v in versions], port=port, log_dir=log_dir
    )
    platform = Platform(load_settings(home=home))
    app = build_app(config, platform)
    if mode in ("ab", "assign"):  # assign: the experiment's path, both variants one batcher
        weights = {"1": 1.0, "2": 1.0} if mode == "ab" else {"1": 1.0}
        assignment = Assignment("bench-ab", "salt-7", weights, holdout=0.2, control="1")
        app.deployments["w4"].apply(Route(2, TrafficSplit(weights), assignment))
    server = uvicorn_server(app, "127.0.0.1", port)
    sock = reuseport_socket("127.0.0.1", port)
    freeze_startup_heap()
    server.run(sockets=[sock])


def _wrk_units(url: str, body: bytes, seconds: int, headers: dict[str, str]) -> dict[str, float]:
    """wrk with a fresh ``x-ghaf-unit`` on every request (a Lua request function)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        script = Path(tmp) / "units.lua"
        fixed = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        script.write_text(
            'wrk.method = "POST"\n' + fixed
            + f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
            + "local n = 0\n"
            + "request = function()\n  n = n + 1\n"
            + '  wrk.headers["x-ghaf-unit"] = "customer-" .. math.random(1, 1000000) .. "-" .. n\n'
            + "  return wrk.format()\nend\n"
        )  # fmt: skip
        out = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return _parse_wrk(out)


def _arm(mode: str, model_dir: Path, workdir: Path, body: bytes, seconds: int) -> dict[str, Any]:
    port = _free_port()
    log_dir = workdir / f"predlog-{mode}"
    args = [sys.executable, "-m", "benchmarks.experiment_overhead", "serve", str(model_dir),
            str(port), mode, str(log_dir)]  # fmt: skip
    process = _start(args, port, timeout=300)
    try:
        result = _wrk_units(
            f"http://127.0.0.1:{port}/v2/models/w4/infer", body, seconds, _ghaf_headers(model_dir)
        )
    finally:
        _stop(process)
    result["logged_units"] = _logged_units(home_of(model_dir), log_dir)
    return result


def _logged_units(home: Path, log_dir: Path) -> float:
    from ghaf.platform import Platform
    from ghaf.serving.predlog import prediction_log_keys, read_prediction_log
    from ghaf.settings import load_settings

    if not log_dir.is_dir():
        return 0.0
    with Platform(load_settings(home=home)) as platform:  # the log is encrypted with its KEK
        table = read_prediction_log(log_dir, ["unit"], keys=prediction_log_keys(platform))
    return float(table.num_rows - table.column("unit").null_count)


def run(size: str) -> list[Figure]:
    seconds = max(3, int(SIZES[size]["seconds"]))  # 1 s is mostly warm-up
    with tempfile.TemporaryDirectory(prefix="ghaf-bench-experiment-") as tmp:
        workdir = Path(tmp)
        _, x, model_dir = train_w4(workdir, int(SIZES[size]["train"]))
        figures = []
        anchor = "W4 with one model, same run"
        for rows in (1, 256):
            _, body = _bodies(x, rows)
            one = _arm("one", model_dir, workdir, body, seconds)
            assign = _arm("assign", model_dir, workdir, body, seconds)
            ab = _arm("ab", model_dir, workdir, body, seconds)
            per_request = f"W4 {rows}-row assignment and logging (experiment, one batcher)"
            tag = f"W4 experiment of two variants {rows}-row"
            figures += [
                Figure(f"{per_request} req/s", assign["rps"], "req/s", anchor, one["rps"]),
                Figure(f"{per_request} p99", assign["p99"], "ms", anchor, one["p99"], False),
                Figure(f"{tag} req/s", ab["rps"], "req/s", anchor, one["rps"]),
                Figure(f"{tag} p99", ab["p99"], "ms", anchor, one["p99"], False),
                Figure(f"{tag} errors", ab["errors"], "count", anchor, one["errors"], False),
                Figure(f"{tag} requests logged with a unit", ab["logged_units"], "count"),
            ]
        return figures


if __name__ == "__main__":  # the server child: serve MODEL_DIR PORT one|ab LOG_DIR
    _, model_dir_arg, port_arg, mode_arg, log_arg = sys.argv[1:]
    serve(model_dir_arg, int(port_arg), mode_arg, log_arg)
