"""``ghaf serve --on ray://...`` on the shared loopback Ray cluster (a head and a second node):
the Ray Serve deployment answers ``tritonclient`` in JSON and binary modes with the model's
own outputs and refuses a caller without credentials as ``ghaf serve`` does; it scales from
zero under a burst with no failed request (the cold-start p50/p95 printed), scales up under
load and back down to its minimum after, the replica counts logged; nothing of the cluster
listens beyond loopback; the command removes its application when stopped.

The cluster is the shared one of ``ray_cluster.py``; Serve is shut down at module end."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.serving.ray_serve import RayServeApp, deploy, import_serve, model_ref
from ghaf.serving.server import ServeConfig
from ghaf.settings import RayServeSettings, load_settings
from ghaf.testing.people import mint
from tests.integration.ray_cluster import GROUP, RayCluster, free_port
from tests.integration.served_home import oip
from tests.unit.serving.server_processes import ServerProcess, bearer, register_champion

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.xdist_group(GROUP),
    # Ray's driver leaves a helper Popen to be reaped at exit: third-party noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
REPLICA = {"num_cpus": 0.25, "max_ongoing_requests": 4}
"""Both nodes have one CPU: a quarter each lets several replicas fit."""


@dataclass
class Served:
    home: Path
    platform: Platform
    model: Any
    rows: np.ndarray
    token: str
    version: Any
    port: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("serving-ray")
    home = work / "home"
    home.mkdir(mode=0o700)
    # The command's replicas: one, a quarter CPU (read by the command and its replicas).
    door = {**REPLICA, "min_replicas": 1, "max_replicas": 1}
    (home / "ghaf.toml").write_text(
        "[serving.ray]\n" + "".join(f"{key} = {value}\n" for key, value in door.items())
    )
    platform = init_home(load_settings(home=home))
    x = np.random.default_rng(5).normal(size=(60, 3)).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    version = register_champion(platform, model, work / "saved", x[:3])
    token = mint(platform, "svc-scorer", ["model_server"], kind="service")
    try:
        yield Served(home, platform, model, x[:5], token, version, free_port())
    finally:
        platform.close()


@pytest.fixture(scope="module")
def ray_driver(ray_cluster: RayCluster) -> Iterator[Any]:
    """This process's connection to the cluster; Serve and the driver gone at module end."""
    from ghaf.pipelines.ray import connect_ray

    ray = connect_ray(ray_cluster.address)
    ray_cluster.wait_for_nodes(2)
    try:
        yield ray
    finally:
        import_serve().shutdown()
        ray.shutdown()
        gc.collect()  # the driver's leftover Popen objects, here where their warning is ignored


def test_serve_on_ray_answers_tritonclient_and_refuses_strangers(
    ray_cluster: RayCluster, ray_driver: Any, served: Served, tmp_path: Path
) -> None:
    import tritonclient.http as triton

    serve = import_serve()

    command = ("serve", "fraud@champion", "--on", f"ray://{ray_cluster.address}")
    server = ServerProcess(
        served.home, command, "/v2/health/ready", tmp_path / "serve.log", port=served.port
    )
    server.start(timeout=240)
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{served.port}")
        auth = bearer(served.token)
        assert client.is_server_ready() and client.is_model_ready("fraud", headers=auth)
        want = served.model.predict_proba(served.rows)
        for binary in (False, True):
            tensor = triton.InferInput("input", list(served.rows.shape), "FP32")
            tensor.set_data_from_numpy(served.rows, binary_data=binary)
            requested = triton.InferRequestedOutput("probabilities", binary_data=binary)
            result = client.infer("fraud", [tensor], outputs=[requested], headers=auth)
            np.testing.assert_allclose(result.as_numpy("probabilities"), want, rtol=1e-5)

        # As `ghaf serve` refuses it: 401 with a bearer challenge, no scores.
        url = f"{server.url}/v2/models/fraud/infer"
        stranger = httpx.post(url, json=oip(served.rows), timeout=30)
        assert stranger.status_code == 401, stranger.text
        assert stranger.headers["www-authenticate"].startswith("Bearer")
        assert "outputs" not in stranger.text
        forged = httpx.post(url, json=oip(served.rows), headers=bearer("ghaf_x"), timeout=30)
        assert forged.status_code == 401, forged.text

        assert serve.status().applications["fraud"].status == "RUNNING"
        exposed = ray_cluster.listening_beyond_loopback()
        assert not exposed, f"Ray listens beyond loopback on {exposed}"
    finally:
        output = server.stop()
    assert f"on Ray Serve at http://127.0.0.1:{served.port}" in output, output
    assert "replicas: running 1" in output, output
    assert "Traceback" not in output, output
    assert "fraud" not in serve.status().applications  # removed on the way out


def _burst(url: str, token: str, rows: np.ndarray, count: int) -> list[tuple[int, float]]:
    """``count`` concurrent requests at once: (status, seconds) of each."""

    async def one(client: httpx.AsyncClient) -> tuple[int, float]:
        start = time.perf_counter()
        try:
            reply = await client.post(url, json=oip(rows), headers=bearer(token))
        except httpx.HTTPError:
            return 0, time.perf_counter() - start
        return reply.status_code, time.perf_counter() - start

    async def all_of() -> list[tuple[int, float]]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(limits=limits, timeout=300) as client:
            return list(await asyncio.gather(*(one(client) for _ in range(count))))

    return asyncio.run(all_of())


class Counts:
    """The deployment's replica counts, sampled every 0.25 s in a thread, printed on change."""

    def __init__(self, app: RayServeApp) -> None:
        self.app = app
        self.seen: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            counts = self.app.replicas()
            if not self.seen or self.seen[-1][1] != counts:
                at = time.monotonic() - self._start
                self.seen.append((at, counts))
                print(f"  t={at:6.1f}s replicas {counts}", flush=True)
            self._stop.wait(0.25)

    def running(self) -> int:
        return self.seen[-1][1].get("RUNNING", 0) if self.seen else 0

    def most_running(self) -> int:
        return max((c.get("RUNNING", 0) for _, c in self.seen), default=0)

    def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert condition(), f"{what}: not within {timeout} s; counts {self.seen}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_scale_from_zero_up_under_load_and_back_down(
    ray_cluster: RayCluster, ray_driver: Any, served: Served
) -> None:
    settings = RayServeSettings(
        **REPLICA,
        min_replicas=0,
        initial_replicas=0,
        max_replicas=2,
        target_ongoing_requests=1,
        upscale_delay_s=0,
        downscale_delay_s=2,
        downscale_to_zero_delay_s=2,
        look_back_period_s=2,
        metrics_interval_s=0.5,
        request_timeout_s=240,  # a cold start on a loaded 2-core box took up to 64 s
    )
    config = ServeConfig(models=[], port=served.port, home=str(served.home))
    models = [model_ref(served.version, "fraud@champion")]
    app = deploy(ray_cluster.address, config, models, settings, name="fraud-scaling")
    counts = Counts(app)
    url = f"{app.url}/v2/models/fraud/infer"
    try:
        # Deployed at zero replicas (it comes back to zero after the load below).
        counts.wait(lambda: not app.replicas(), 90, "zero replicas")
        burst = _burst(url, served.token, served.rows[:1], 50)
        failed = [status for status, _ in burst if status != 200]
        seconds = np.array([s for _, s in burst])
        p50, p95 = np.percentile(seconds, [50, 95])
        print(f"  cold start, 50 requests at 0 replicas: p50 {p50:.2f} s, p95 {p95:.2f} s")
        assert not failed, f"{len(failed)} of 50 failed: {failed}"

        # Load: 8 callers (each pausing 50 ms between requests, to spare the shared box's
        # CPU) keep more requests in flight than one replica's target, until a second runs.
        stop = threading.Event()

        def caller() -> None:
            with httpx.Client(timeout=150) as client:
                while not stop.is_set():
                    client.post(url, json=oip(served.rows[:1]), headers=bearer(served.token))
                    stop.wait(0.05)

        callers = [threading.Thread(target=caller, daemon=True) for _ in range(8)]
        for thread in callers:
            thread.start()
        try:
            counts.wait(lambda: counts.running() > 1, 180, "scale up under load")
        finally:
            stop.set()
            for thread in callers:
                thread.join(30)
        print(f"  most replicas running: {counts.most_running()}")
        exposed = ray_cluster.listening_beyond_loopback()
        assert not exposed, f"Ray listens beyond loopback on {exposed}"
        # No load: back to the minimum, zero, after downscale_to_zero_delay_s.
        counts.wait(lambda: not app.replicas(), 90, "scale down to zero after load")
    finally:
        counts.stop()
        app.remove()
