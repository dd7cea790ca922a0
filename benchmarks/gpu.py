"""GPU serving (``make bench-gpu``): a PyTorch MLP served with batching vs bare batched inference.

Same GPU, same run: the bare loop copies 256-row float32 batches from pinned host memory
and runs the bf16 model; Ghaf serves the same model over HTTP (OIP v2 binary tensors,
256-row requests, 64 connections with wrk), once with one worker process and once with
four sharing the GPU (each its own CUDA context; the batcher merges concurrent requests
per worker). Finishes in well under 3 minutes. Without CUDA it prints why and returns no
figures.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure

ROWS = 256
FEATURES = 20
WORKERS = [int(n) for n in os.environ.get("GHAF_BENCH_GPU_WORKERS", "1,4").split(",")]
"""Worker-process counts of the served side (``GHAF_BENCH_GPU_WORKERS``, default 1 and 4)."""


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def run(size: str) -> list[Figure]:
    if not _cuda():
        print("gpu suite skipped: CUDA is not available on this machine", file=sys.stderr)
        return []
    import orjson
    import torch

    from benchmarks._serving_apps import seal
    from ghaf.serving.runtimes.torch import save_torch

    torch.manual_seed(7)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 1),
    )
    seconds = 5 if size == "smoke" else 15
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "mlp"
        save_torch(mlp, FEATURES, model_dir / "model.pt2")
        seal(model_dir)
        # Bare batched inference on the same GPU: pinned host batch -> device -> bf16 MLP.
        model = mlp.cuda().to(torch.bfloat16).eval()
        host = torch.randn(ROWS, FEATURES).pin_memory()
        with torch.inference_mode():
            for _ in range(50):
                model(host.cuda(non_blocking=True).to(torch.bfloat16)).float().cpu()
            torch.cuda.synchronize()
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                model(host.cuda(non_blocking=True).to(torch.bfloat16)).float().cpu()
                calls += 1
            bare_rows = calls * ROWS / (time.perf_counter() - started)
        # Ghaf serving the same model (binary OIP requests of 256 rows).
        data = np.random.default_rng(7).standard_normal((ROWS, FEATURES), dtype=np.float32)
        head = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [ROWS, FEATURES],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": data.nbytes},
                    }
                ]
            }
        )
        for workers in WORKERS:
            result = _serve_and_load(model_dir, head + data.tobytes(), len(head), seconds, workers)
            label = f"{workers} worker{'s' if workers > 1 else ''}"
            figures += [
                Figure(
                    f"GPU MLP served rows/s (256-row requests, {label})",
                    result["rps"] * ROWS,
                    "rows/s",
                    "bare batched bf16 inference, batch 256",
                    bare_rows,
                ),
                Figure(f"GPU MLP served p99 ({label})", result["p99"], "ms", None, None, False),
                Figure(
                    f"GPU MLP served errors ({label})", result["errors"], "count", None, None, False
                ),
            ]
    return figures


def _serve_and_load(
    model_dir: Path, body: bytes, head_len: int, seconds: int, workers: int
) -> dict[str, float]:
    """Start Ghaf's server on the model with ``workers`` processes and load it with wrk."""
    from benchmarks._serving_apps import bench_headers
    from benchmarks.serving import _free_port, _start, _stop, wrk

    port = _free_port()
    command = [sys.executable, "-m", "benchmarks._serving_apps", "ghaf", str(model_dir)]
    server = _start([*command, str(port), "pytorch", "", str(workers)], port)
    headers = {**_binary_headers(head_len), **bench_headers(model_dir)}
    try:
        wrk(f"http://127.0.0.1:{port}/v2/models/w4/infer", body, 2, connections=64,
            headers=headers)  # fmt: skip
        return wrk(
            f"http://127.0.0.1:{port}/v2/models/w4/infer",
            body,
            seconds,
            connections=64,
            headers=headers,
        )
    finally:
        _stop(server)


def _binary_headers(head_len: int) -> dict[str, str]:
    return {
        "Inference-Header-Content-Length": str(head_len),
        "Content-Type": "application/octet-stream",
    }
