"""W4 real-time serving (Ghaf vs a bare Starlette app, same run, wrk) and W6 batch scoring.

Figures: requests/s and p99 for 1-row and 256-row JSON requests at 32 connections;
W6 rows/s Parquet->Parquet against in-memory predict_proba; ONNX vs native; ``--only
gpu`` serves a PyTorch MLP on CUDA against bare batched inference on the same GPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.anchor_venvs import ensure
from benchmarks.common import Figure

ROOT = Path(__file__).resolve().parent.parent
THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SIZES = {
    "smoke": {"seconds": 1, "w6_rows": 50_000, "soak": 0, "w6_peak_rows": 0, "train": 5_000},
    "full": {
        "seconds": 20,
        "w6_rows": 1_000_000,
        "soak": 60,
        "w6_peak_rows": 10_000_000,
        "train": 20_000,
    },
}
SOAK_RATE = 200
"""Requests per second of the soak (1-row OIP requests, fixed schedule)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_w4(workdir: Path, rows: int = 20_000) -> tuple[Any, np.ndarray, Path]:
    """The W4 model (seed 7), saved with skops and sealed like the registry would."""
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from benchmarks._serving_apps import seal

    x, y = make_classification(n_samples=rows, n_features=20, random_state=7)
    x = x.astype(np.float32)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=7).fit(x, y)
    model_dir = workdir / "w4"
    model_dir.mkdir(parents=True, exist_ok=True)
    sio.dump(model, model_dir / "model.skops")
    seal(model_dir)
    return model, x, model_dir


def _start(
    args: list[str],
    port: int,
    env_extra: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    quiet: bool = False,
) -> Any:
    env = {**os.environ, **THREADS_ENV, **(env_extra or {})}
    out = subprocess.DEVNULL if quiet else None  # anchors log each request to stdout
    process = subprocess.Popen(args, env=env, cwd=cwd or ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(0.5)
                return process
        if process.poll() is not None:
            raise RuntimeError(f"{args} exited {process.returncode}")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{args} did not start")


def _stop(process: Any) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def wrk(
    url: str,
    body: bytes,
    seconds: int,
    connections: int = 32,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """Run wrk with a POST body; requests/s, p50/p99 ms and errors (non-2xx + socket)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            + "".join(
                f'wrk.headers["{k}"] = "{v}"\n'
                for k, v in (headers or {"Content-Type": "application/json"}).items()
            )
            + f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
        )
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return _parse_wrk(out)


def _ghaf_headers(model_dir: Path) -> dict[str, str]:
    """JSON plus the bench token: Ghaf's server authorizes every request."""
    from benchmarks._serving_apps import bench_headers

    return {"Content-Type": "application/json", **bench_headers(model_dir)}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _parse_wrk(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0.0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += float(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(float(x) for x in sock.groups())
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors}


def _bodies(x: np.ndarray, rows: int) -> tuple[bytes, bytes]:
    data = x[:rows]
    bare = json.dumps({"instances": data.tolist()}).encode()
    oip = {
        "inputs": [
            {
                "name": "input",
                "shape": list(data.shape),
                "datatype": "FP32",
                "data": data.ravel().tolist(),
            }
        ]
    }
    return bare, json.dumps(oip).encode()


def bench_w4(size: str, x: np.ndarray, model_dir: Path, workdir: Path) -> list[Figure]:
    seconds = SIZES[size]["seconds"]
    figures: list[Figure] = []
    py = sys.executable
    for flavor, mdir in (("skops", model_dir), ("onnx", workdir / "w4_onnx")):
        if flavor == "onnx" and (size == "smoke" or not mdir.exists()):
            continue  # the ONNX W4 pair runs at full size only (smoke stays under a minute)
        for rows in (1, 256):
            bare_body, oip_body = _bodies(x, rows)
            port_b, port_g = _free_port(), _free_port()
            bare = _start(
                [py, "-m", "benchmarks._serving_apps", "bare", str(model_dir), str(port_b)], port_b
            )
            try:
                base = wrk(f"http://127.0.0.1:{port_b}/predict", bare_body, seconds)
            finally:
                _stop(bare)
            logs = str(workdir / f"predlog-{flavor}-{rows}")
            ghaf = _start(
                [
                    py,
                    "-m",
                    "benchmarks._serving_apps",
                    "ghaf",
                    str(mdir),
                    str(port_g),
                    flavor,
                    logs,
                ],
                port_g,
            )
            try:
                url = f"http://127.0.0.1:{port_g}/v2/models/w4/infer"
                ours = wrk(url, oip_body, seconds, headers=_ghaf_headers(mdir))
            finally:
                _stop(ghaf)
            tag = "" if flavor == "skops" else " onnx"
            anchor = "bare starlette+uvicorn predict_proba"
            figures += [
                Figure(f"W4{tag} {rows}-row req/s", ours["rps"], "req/s", anchor, base["rps"]),
                Figure(f"W4{tag} {rows}-row p99", ours["p99"], "ms", anchor, base["p99"], False),
                Figure(f"W4{tag} {rows}-row p50", ours["p50"], "ms", anchor, base["p50"], False),
                Figure(
                    f"W4{tag} {rows}-row errors",
                    ours["errors"],
                    "count",
                    anchor,
                    base["errors"],
                    False,
                ),
            ]
    return figures


def bench_w6(size: str, model: Any, workdir: Path) -> list[Figure]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification

    from ghaf.serving.batch import score_file
    from ghaf.serving.runtimes import load_runtime

    n = SIZES[size]["w6_rows"]
    x, _ = make_classification(n_samples=n, n_features=20, random_state=7)
    x = x.astype(np.float32)
    columns = [f"f{i}" for i in range(20)]
    source = workdir / "w6.parquet"
    pq.write_table(
        pa.table({c: x[:, i] for i, c in enumerate(columns)}), source, row_group_size=65536
    )
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=os.cpu_count() or 1):
        started = time.perf_counter()
        model.predict_proba(x)
        limit = n / (time.perf_counter() - started)
    figures: list[Figure] = []
    for flavor, mdir in (("skops", workdir / "w4"), ("onnx", workdir / "w4_onnx")):
        if not mdir.exists():
            continue
        runtime = load_runtime(flavor, mdir)
        started = time.perf_counter()
        stats = score_file(runtime, source, workdir / f"w6-out-{flavor}.parquet", progress=False)
        rate = stats.rows / (time.perf_counter() - started)
        tag = "" if flavor == "skops" else " onnx"
        figures.append(
            Figure(
                f"W6{tag} rows/s Parquet->Parquet", rate, "rows/s", "in-memory predict_proba", limit
            )
        )
    return figures


def prepare_onnx(model: Any, x: np.ndarray, workdir: Path) -> list[Figure]:
    from benchmarks._serving_apps import seal
    from ghaf.serving.runtimes import load_runtime
    from ghaf.serving.runtimes.onnx import check_parity, convert_sklearn

    target = workdir / "w4_onnx"
    convert_sklearn(model, x.shape[1], target / "model.onnx")
    seal(target)
    worst = check_parity(load_runtime("skops", workdir / "w4"), load_runtime("onnx", target), x)
    return [Figure("ONNX parity max |diff| (tolerance 1e-4)", worst, "abs", None, None, False)]


def bench_w6_peak(size: str, workdir: Path) -> list[Figure]:
    """Score W6_PEAK rows (10M at full size) in a child; its peak RSS must stay under 1 GiB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks.common import run_child

    n = SIZES[size]["w6_peak_rows"]
    if not n:
        return []
    source, output = workdir / "w6-peak.parquet", workdir / "w6-peak-out.parquet"
    rng = np.random.default_rng(7)
    columns = [f"f{i}" for i in range(20)]
    schema = pa.schema([pa.field(c, pa.float32()) for c in columns])
    with pq.ParquetWriter(source, schema) as writer:
        for start in range(0, n, 500_000):
            chunk = rng.standard_normal((min(500_000, n - start), 20), dtype=np.float32)
            table = pa.table({c: chunk[:, i] for i, c in enumerate(columns)}, schema=schema)
            writer.write_table(table, row_group_size=65_536)
    result, rss = run_child(
        "benchmarks._serving_w6", str(workdir / "w4"), str(source), str(output), env=THREADS_ENV
    )
    source.unlink()
    output.unlink(missing_ok=True)
    label = f"{n / 1e6:g}M"
    return [
        Figure(f"W6 {label} rows peak RSS", rss, "MiB", "limit 1 GiB", 1024.0, False),
        Figure(f"W6 {label} rows/s Parquet->Parquet", result["rows"] / result["seconds"], "rows/s"),
    ]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def soak(
    url: str, body: bytes, seconds: int, rate: int, pid: int, headers: dict[str, str]
) -> dict[str, float]:
    """Send ``rate`` requests/s for ``seconds`` with ``hey`` (Go, rate-limited per worker, so
    the client holds the schedule on two cores); sample the server's RSS every second."""
    import threading

    if shutil.which("hey") is None:
        raise RuntimeError("hey is not installed (apt-get install -y hey)")
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            samples.append(_rss_mib(pid))

    workers = 4
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            body_file = Path(tmp) / "body.json"
            body_file.write_bytes(body)
            out = subprocess.run(
                ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(rate // workers),
                 "-m", "POST", "-T", "application/json", "-D", str(body_file),
                 *[arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")],
                 "-o", "csv", f"{url}/v2/models/w4/infer"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
    finally:
        done.set()
        sampler.join()
    latencies, codes = _parse_hey_csv(out)
    window = max(1, min(10, len(samples) // 3))
    return {
        "requests": float(len(codes)),
        "rate": len(codes) / seconds,
        "errors": float(sum(1 for code in codes if code != 200)),
        "p99": float(np.percentile(latencies, 99) * 1000) if latencies else 0.0,
        "rss_start": float(np.mean(samples[:window])) if samples else 0.0,
        "rss_end": float(np.mean(samples[-window:])) if samples else 0.0,
        "rss_max": max(samples) if samples else 0.0,
    }


def _parse_hey_csv(out: str) -> tuple[list[float], list[int]]:
    """hey's CSV: one row per request, response-time (s) first, status-code column named."""
    lines = out.strip().splitlines()
    if not lines:
        return [], []
    header = lines[0].split(",")
    status = header.index("status-code")
    latencies, codes = [], []
    for line in lines[1:]:
        cells = line.split(",")
        latencies.append(float(cells[0]))
        codes.append(int(cells[status]) if cells[status] else 0)
    return latencies, codes


def bench_soak(size: str, x: np.ndarray, model_dir: Path, workdir: Path) -> list[Figure]:
    seconds = SIZES[size]["soak"]
    if not seconds:
        return []
    _, oip_body = _bodies(x, 1)
    port = _free_port()
    logs = str(workdir / "predlog-soak")
    args = [sys.executable, "-m", "benchmarks._serving_apps", "ghaf", str(model_dir), str(port)]
    server = _start([*args, "skops", logs], port)
    try:
        headers = _ghaf_headers(model_dir)
        httpx_warm(f"http://127.0.0.1:{port}", oip_body, headers)
        url = f"http://127.0.0.1:{port}"
        result = soak(url, oip_body, seconds, SOAK_RATE, server.pid, headers)
    finally:
        _stop(server)
    tag = f"soak {seconds} s @{SOAK_RATE} req/s"
    return [
        Figure(f"{tag} requests", result["requests"], "count"),
        Figure(f"{tag} achieved rate", result["rate"], "req/s", "target rate", SOAK_RATE),
        Figure(f"{tag} errors", result["errors"], "count", None, None, False),
        Figure(f"{tag} p99", result["p99"], "ms", None, None, False),
        Figure(f"{tag} RSS first 10 s", result["rss_start"], "MiB", None, None, False),
        Figure(
            f"{tag} RSS last 10 s",
            result["rss_end"],
            "MiB",
            "RSS first 10 s",
            result["rss_start"],
            False,
        ),
        Figure(f"{tag} RSS max", result["rss_max"], "MiB", None, None, False),
    ]


def httpx_warm(url: str, body: bytes, headers: dict[str, str]) -> None:
    import httpx

    for _ in range(200):
        httpx.post(f"{url}/v2/models/w4/infer", content=body, headers=headers).raise_for_status()


def bench_anchors(size: str, x: np.ndarray, model_dir: Path, workdir: Path) -> list[Figure]:
    """KServe and BentoML (own venvs), each with the bare app measured right beside it."""
    from benchmarks import _serving_anchors as anchors

    if size != "full":
        return []
    seconds = SIZES[size]["seconds"]
    bare_body, oip_body = _bodies(x, 1)
    figures: list[Figure] = []
    for name in ("kserve", "bentoml"):
        python = ensure(name)
        if python is None:
            continue
        port_b, port_a, port_g = _free_port(), _free_port(), _free_port()
        py = sys.executable
        bare = _start(
            [py, "-m", "benchmarks._serving_apps", "bare", str(model_dir), str(port_b)], port_b
        )
        try:
            base = wrk(f"http://127.0.0.1:{port_b}/predict", bare_body, seconds)
        finally:
            _stop(bare)
        env = {"W4_MODEL_DIR": str(model_dir)}
        try:
            anchor = _start(
                anchors.command(name, python, model_dir, port_a, workdir),
                port_a,
                env,
                cwd=workdir,
                quiet=True,
            )
        except RuntimeError as exc:
            print(f"# {name} did not start: {exc}", file=sys.stderr)
            continue
        try:
            theirs = wrk(f"http://127.0.0.1:{port_a}{anchors.PATHS[name]}", bare_body, seconds)
        finally:
            _stop(anchor)
        ghaf = _start(
            [py, "-m", "benchmarks._serving_apps", "ghaf", str(model_dir), str(port_g)], port_g
        )
        try:
            url = f"http://127.0.0.1:{port_g}/v2/models/w4/infer"
            ours = wrk(url, oip_body, seconds, headers=_ghaf_headers(model_dir))
        finally:
            _stop(ghaf)
        label = anchors.VERSIONS[name]
        beside = "bare (beside it)"
        figures += [
            Figure(f"W4 1-row req/s {name}", theirs["rps"], "req/s", beside, base["rps"]),
            Figure(f"W4 1-row p99 {name}", theirs["p99"], "ms", beside, base["p99"], False),
            Figure(f"W4 1-row errors {name}", theirs["errors"], "count", None, None, False),
            Figure(f"W4 1-row req/s ghaf vs {name}", ours["rps"], "req/s", label, theirs["rps"]),
            Figure(f"W4 1-row req/s ghaf vs bare ({name} run)", ours["rps"], "req/s",
                   "bare starlette+uvicorn predict_proba", base["rps"]),
        ]  # fmt: skip
    return figures


def run(size: str) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="ghaf-bench-serving-") as tmp:
        workdir = Path(tmp)
        model, x, model_dir = train_w4(workdir, SIZES[size]["train"])
        figures = prepare_onnx(model, x, workdir)
        figures += bench_w4(size, x, model_dir, workdir)
        figures += bench_w6(size, model, workdir)
        figures += bench_w6_peak(size, workdir)
        figures += bench_soak(size, x, model_dir, workdir)
        figures += bench_anchors(size, x, model_dir, workdir)
        return figures
