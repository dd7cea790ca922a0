"""Serving on Ray Serve (``ghaf serve --on ray://HOST:PORT``) beside ``ghaf serve`` itself.

The W4 model (HistGradientBoostingClassifier, max_iter=100, seed 7, signed by the bench
home's key), 1-row OIP v2 requests, on a loopback cluster of a head and a worker node of
one CPU each (``tests/integration/ray_cluster.py``), started here and stopped after.

- steady state: wrk, 32 connections, through Serve's HTTP proxy to one replica, against
  one ``ghaf serve`` worker (the anchor, same run, same body and token);
- cold start: a burst of requests sent while the deployment has zero replicas
  (``min_replicas = 0``): p50 and p95 of their latencies, every one answered, against the
  anchor's start-to-first-answer time (process start, model verified and loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Figure, ray_loopback_env
from benchmarks.serving import THREADS_ENV, _bodies, _free_port, _start, _stop, train_w4, wrk

SIZES = {
    "smoke": {"seconds": 3, "burst": 20, "train": 5_000},
    "full": {"seconds": 20, "burst": 50, "train": 20_000},
}
ANCHOR = "ghaf serve, 1 worker"


def _burst(url: str, body: bytes, headers: dict[str, str], count: int) -> list[tuple[int, float]]:
    import httpx

    async def one(client: httpx.AsyncClient) -> tuple[int, float]:
        start = time.perf_counter()
        try:
            reply = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            return 0, time.perf_counter() - start
        return reply.status_code, time.perf_counter() - start

    async def all_of() -> list[tuple[int, float]]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(limits=limits, timeout=300) as client:
            return list(await asyncio.gather(*(one(client) for _ in range(count))))

    return asyncio.run(all_of())


def _anchor(model_dir: Path, body: bytes, headers: dict[str, str], seconds: int) -> dict[str, Any]:
    """``ghaf serve`` (one worker): start-to-first-answer seconds and wrk figures."""
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}/v2/models/w4/infer"
    command = [sys.executable, "-m", "benchmarks._serving_apps", "ghaf", str(model_dir), str(port)]
    started = time.perf_counter()
    process = _start(command, port, quiet=True)
    try:
        while httpx.post(url, content=body, headers=headers, timeout=60).status_code != 200:
            time.sleep(0.05)
        cold = time.perf_counter() - started
        return {"cold": cold, **wrk(url, body, seconds, headers=headers)}
    finally:
        _stop(process)


def run(size: str) -> list[Figure]:
    from benchmarks._serving_apps import bench_headers, home_of

    sizes = SIZES[size]
    workdir = Path(tempfile.mkdtemp(prefix="ghaf-bench-serve-ray-"))
    ray_loopback_env(workdir)  # before Ray is imported
    os.environ.update(THREADS_ENV)
    _, x, model_dir = train_w4(workdir, sizes["train"])
    _, body = _bodies(x, 1)
    headers = {**bench_headers(model_dir), "Content-Type": "application/json"}
    anchor = _anchor(model_dir, body, headers, sizes["seconds"])

    from tests.integration.ray_cluster import start_cluster

    from ghaf.serving.ray_serve import deploy, import_serve, model_ref
    from ghaf.serving.server import ServeConfig
    from ghaf.settings import RayServeSettings, load_settings

    home = home_of(model_dir)
    from ghaf.serving.models import local_model

    spec = local_model(load_settings(home=home), model_dir, "skops")
    models = [model_ref(spec, str(model_dir))]
    config = ServeConfig(models=[], port=_free_port(), home=str(home))
    cluster_run = start_cluster()
    cluster = next(cluster_run)
    ray: Any = None
    try:
        from ghaf.pipelines.ray import connect_ray

        ray = connect_ray(cluster.address)
        cluster.wait_for_nodes(2)
        steady = RayServeSettings(min_replicas=1, max_replicas=1, num_cpus=0.5)
        app = deploy(cluster.address, config, models, steady, name="w4")
        url = f"{app.url}/v2/models/{spec.name}/infer"
        try:
            ours = wrk(url, body, sizes["seconds"], headers=headers)
        finally:
            app.remove()
        scaled = RayServeSettings(
            min_replicas=0, initial_replicas=0, max_replicas=1, num_cpus=0.5, request_timeout_s=300
        )
        app = deploy(cluster.address, config, models, scaled, name="w4-cold")
        try:
            burst = _burst(url, body, headers, sizes["burst"])
        finally:
            app.remove()
        exposed = cluster.listening_beyond_loopback()
    finally:
        if ray is not None:
            import_serve().shutdown()
            ray.shutdown()
        with contextlib.suppress(StopIteration):
            next(cluster_run)
    seconds = np.array([s for _, s in burst])
    failed = sum(status != 200 for status, _ in burst)
    p50, p95 = np.percentile(seconds, [50, 95])
    burst_of = f"{sizes['burst']} at 0 replicas"
    cold = anchor["cold"]
    return [
        Figure("Ray Serve W4 1-row req/s (1 replica)", ours["rps"], "req/s", ANCHOR, anchor["rps"]),
        Figure("Ray Serve W4 1-row p50", ours["p50"], "ms", ANCHOR, anchor["p50"], False),
        Figure("Ray Serve W4 1-row p99", ours["p99"], "ms", ANCHOR, anchor["p99"], False),
        Figure("Ray Serve W4 errors", ours["errors"], "count", ANCHOR, anchor["errors"], False),
        Figure(f"Ray Serve cold start p50 ({burst_of})", p50, "s", ANCHOR, cold, False),
        Figure(f"Ray Serve cold start p95 ({burst_of})", p95, "s", ANCHOR, cold, False),
        Figure(f"Ray Serve cold start failed ({burst_of})", failed, "count", None, None, False),
        Figure("Ray listening beyond loopback", len(exposed), "sockets", None, None, False),
    ]
