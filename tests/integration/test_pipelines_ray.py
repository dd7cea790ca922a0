"""The same pipeline on the local executor and on a local Ray cluster (a head node from
``ray start --head`` and one worker node, one CPU each, started and stopped here on 127.0.0.1)
gives the same outputs, and nothing of the cluster listens beyond loopback.

The worker node comes from ``ray_worker_node.py``, not ``ray start --address``: Ray 2.60's CLI
either refuses a second node (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) or swaps 127.0.0.1 for the
machine's routable address and listens on every interface (=1); that module says why."""

from __future__ import annotations

import gc
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ghaf.home import init_home
from ghaf.pipelines import Pipeline, output_of, run_pipeline
from ghaf.pipelines.examples import flaky, numbers, placement
from ghaf.platform import Platform
from ghaf.settings import load_settings
from tests.conftest import service_missing

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    # Ray's driver leaves a helper Popen to be reaped at exit: third-party noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

RAY = Path(sys.executable).parent / "ray"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(process: subprocess.Popen[bytes]) -> set[str]:
    """Local addresses of every listening TCP socket of ``process`` and its descendants."""
    addresses: set[str] = set()
    try:
        root = psutil.Process(process.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return addresses
    for proc in family:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    addresses.add(conn.laddr.ip)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return addresses


@pytest.fixture(scope="module")
def ray_cluster(ray_auth: None) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    if not RAY.exists():
        service_missing("Ray", "ray is not installed: pip install 'ghaf[ray]'")
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="rayg", dir="/tmp"))
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--block", "--disable-usage-stats"]
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            f"--port={port}",
            "--include-dashboard=false",
            "--object-store-memory=80000000",
            f"--temp-dir={temp}",
            *common,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    procs = [head]
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the Ray head did not start in 120 s")
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.ray_worker_node", f"--address={address}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(worker)
        yield address, procs
    finally:
        for proc in reversed(procs):
            # Only the process groups we started: never `ray stop`, which stops every Ray here.
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


def _alive(nodes: list[dict[str, object]]) -> list[dict[str, object]]:
    return [n for n in nodes if n.get("Alive")]


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def _platform(home: Path) -> Platform:
    return init_home(load_settings(home=home))


def test_same_outputs_local_and_ray(
    ray_cluster: tuple[str, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    from ghaf.pipelines.ray import RayExecutor

    address, procs = ray_cluster
    with _platform(tmp_path / "local") as local:
        local_run = run_pipeline(local, local.admin(), numbers(rows=300))
        local_report = (output_of(local, local_run, "write_report") / "report.txt").read_text()
    assert local_run.status == "succeeded"

    # capacity=2: the worker node may join after the executor counts the cluster's CPUs.
    executor = RayExecutor(address, capacity=2)
    # Imported after the executor set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which Ray reads once.
    import ray

    deadline = time.monotonic() + 120
    while len(_alive(ray.nodes())) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    nodes = _alive(ray.nodes())
    assert len(nodes) == 2, f"the worker node did not join: {nodes}"
    assert ray.cluster_resources().get("CPU") == 2.0
    try:
        with _platform(tmp_path / "ray") as remote:
            ray_run = run_pipeline(remote, remote.admin(), numbers(rows=300), executor=executor)
            assert ray_run.status == "succeeded", ray_run.error
            assert ray_run.executor == "ray"
            for step in local_run.steps:
                assert ray_run.step(step.step).output_digest == step.output_digest, step.step
            report = (output_of(remote, ray_run, "write_report") / "report.txt").read_text()
            assert report == local_report

            again = run_pipeline(remote, remote.admin(), numbers(rows=300), executor=executor)
            assert {s.status for s in again.steps} == {"cached"}

            # Two one-CPU steps on two one-CPU nodes, each holding its CPU until both
            # started (at most 60 s): one ran on each. A sleep of 2 s was not enough
            # once: under CI load the second started only after the first had finished.
            meet = str(tmp_path / "meet")
            placed = run_pipeline(remote, remote.admin(), placement(60.0, meet), executor=executor)
            assert placed.status == "succeeded", placed.error
            ran_on = {output_of(remote, placed, s.step)["node"] for s in placed.steps}
            assert ran_on == {n["NodeID"] for n in nodes}

            flaky_pipeline = Pipeline("flaky")
            flaky_pipeline.add(flaky, marker_dir=str(tmp_path / "m"), failures=2)
            retried = run_pipeline(remote, remote.admin(), flaky_pipeline, executor=executor)
            assert retried.status == "succeeded" and retried.step("flaky").attempts == 3
    finally:
        executor.close()
        # Collect the driver's leftover Popen objects here, where their warning is
        # ignored, instead of in whichever test happens to run next on this worker.
        gc.collect()

    listening = set().union(*(_listening(p) for p in procs))
    assert _listening(procs[1]), "the worker node's processes listen nowhere: not checked"
    exposed = {a for a in listening if not _loopback(a)}
    assert not exposed, f"Ray listens beyond loopback on {exposed}"
