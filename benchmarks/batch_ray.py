"""Batch scoring on Ray Data (``ghaf predict --on ray://HOST:PORT``): rows/s on one node of
one CPU against a head and a worker node of one CPU each, on loopback, and the local path.

The work is W6's at W6_PEAK's size: the W4 model (HistGradientBoostingClassifier,
max_iter=100, seed 7, signed by the bench home's key) scores N rows x 20 float32 features
plus an id (10M at full size) from Parquet (row groups of 65,536) to a Parquet file, each
figure the whole ``score_to_target`` call (model verified on the driver and on every
actor, residency, audit). Each cluster is started here on 127.0.0.1 (head from ``ray
start --head``, worker node from ``tests/integration/ray_worker_node.py``), used once and
stopped. Target: two nodes >= 1.6x one node.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Figure, ray_loopback_env

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"
SIZES = {"smoke": 50_000, "full": 10_000_000}
THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def loopback_cluster(nodes: int, env: dict[str, str]) -> Iterator[str]:
    """A head (and ``nodes - 1`` worker nodes) of one CPU each on 127.0.0.1; its address."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="rayb", dir="/tmp"))
    store = ["--object-store-memory=300000000"]
    head = [str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false"]
    head += ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--block", "--disable-usage-stats"]
    head += [f"--temp-dir={temp}", *store]
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen(head, env=env, start_new_session=True, **quiet)]
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("the Ray head did not start in 120 s")
        for _ in range(nodes - 1):
            worker = [sys.executable, "-m", "tests.integration.ray_worker_node"]
            worker += [f"--address={address}", "--num-cpus=1", *store]
            procs.append(
                subprocess.Popen(worker, cwd=ROOT, env=env, start_new_session=True, **quiet)
            )
        yield address
    finally:
        for proc in reversed(procs):  # only the process groups started here
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _connect(address: str, timeout: float = 240) -> Any:
    """The driver on ``address``, retried while the head finishes starting (slow under load)."""
    from ghaf.errors import BackendUnavailableError
    from ghaf.pipelines.ray import connect_ray

    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect_ray(address)
        except BackendUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _wait_for(ray: Any, nodes: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len([n for n in ray.nodes() if n.get("Alive")]) >= nodes:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{nodes} Ray nodes did not join in {timeout} s")


def _write_input(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    columns = [f"f{i}" for i in range(20)]
    schema = pa.schema([pa.field("id", pa.int64())] + [pa.field(c, pa.float32()) for c in columns])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 500_000):
            count = min(500_000, rows - start)
            chunk = rng.standard_normal((count, 20), dtype=np.float32)
            arrays = {
                "id": np.arange(start, start + count),
                **{c: chunk[:, i] for i, c in enumerate(columns)},
            }
            writer.write_table(pa.table(arrays, schema=schema), row_group_size=65_536)


def _signed_w4(settings: Any, directory: Path) -> Any:
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ghaf.security.signing import sign_model_dir
    from ghaf.serving.models import local_model

    x, y = make_classification(n_samples=20_000, n_features=20, random_state=7)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=7).fit(
        x.astype(np.float32), y
    )
    directory.mkdir(parents=True)
    sio.dump(model, directory / "model.skops")
    sign_model_dir(settings, directory)
    return local_model(settings, directory, "skops")


def run(size: str) -> list[Figure]:
    return measure(SIZES[size])


def measure(rows: int) -> list[Figure]:
    """The figures for ``rows`` rows (``python -m benchmarks.batch_ray ROWS`` runs one size)."""
    workdir = Path(tempfile.mkdtemp(prefix="ghaf-bench-ray-"))
    ray_loopback_env(workdir)  # before Ray is imported
    os.environ.update(THREADS_ENV)
    env = dict(os.environ)
    from ghaf.home import init_home
    from ghaf.serving.outputs import score_to_target
    from ghaf.settings import load_settings

    try:
        with init_home(load_settings(home=workdir / "home")) as platform:
            spec = _signed_w4(platform.settings, workdir / "w4")
            source = workdir / "in.parquet"
            _write_input(source, rows)
            load = os.getloadavg()[0]

            driver_cpu: dict[str, float] = {}

            def timed(on: str | None, name: str) -> float:
                out = workdir / f"{name}.parquet"
                started, cpu = time.perf_counter(), time.process_time()
                stats = score_to_target(
                    platform, platform.admin(), spec, source, str(out), progress=False, on=on
                )
                seconds = time.perf_counter() - started
                driver_cpu[name] = (time.process_time() - cpu) / seconds
                assert stats.rows == rows, stats
                out.unlink()
                return rows / seconds

            local = timed(None, "local")
            rates: dict[int, float] = {}
            for nodes in (1, 2):
                with loopback_cluster(nodes, env) as address:
                    ray = _connect(address)
                    try:
                        _wait_for(ray, nodes)
                        rates[nodes] = timed(f"ray://{address}", f"ray{nodes}")
                    finally:
                        ray.shutdown()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    label = f"{rows / 1e6:g}M rows"
    return [
        Figure(
            f"batch on Ray, 2 nodes x 1 CPU ({label})",
            rates[2],
            "rows/s",
            "1 node x 1 CPU (target ratio >= 1.6)",
            rates[1],
        ),
        Figure(f"batch on Ray, 1 node x 1 CPU ({label})", rates[1], "rows/s"),
        Figure(f"batch local path, {os.cpu_count()} threads ({label})", local, "rows/s"),
        Figure("load average (1 min) before scoring", load, "", None, None, False),
        *(
            Figure(f"driver CPU share during {name} ({label})", share, "cores", None, None, False)
            for name, share in driver_cpu.items()
        ),
    ]


if __name__ == "__main__":
    for figure in measure(int(sys.argv[1])):
        print(figure.to_json(), flush=True)
