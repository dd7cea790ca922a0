"""One loopback Ray cluster for every Ray test on a pytest worker: a head from
``ray start --head`` and one worker node (``ray_worker_node.py``), one CPU each, on 127.0.0.1.

Starting a cluster costs seconds on a busy CI box, so the Ray modules share one: the
``ray_cluster`` fixture (tests/conftest.py) is session-scoped, and each module that uses it
carries ``pytest.mark.xdist_group("ray-cluster")`` so all of them run on one xdist worker. A
module leaves the cluster as it found it: it disconnects its driver (``ray.shutdown()``) and
removes what it deployed (``serve.shutdown()``) before it ends.

The worker node comes from ``ray_worker_node.py``, not ``ray start --address``: Ray 2.60's CLI
either refuses a second node (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) or swaps 127.0.0.1 for the
machine's routable address and listens on every interface (=1); that module says why."""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import service_missing

RAY = Path(sys.executable).parent / "ray"
ROOT = Path(__file__).resolve().parents[2]
GROUP = "ray-cluster"


@dataclass(frozen=True)
class RayCluster:
    """The shared cluster: its GCS address and the process groups that run it."""

    address: str
    procs: tuple[subprocess.Popen[bytes], ...]

    def listening_beyond_loopback(self) -> set[str]:
        """Every non-loopback address a process of the cluster listens on (should be none)."""
        listening = set().union(*(_listening(p) for p in self.procs))
        assert _listening(self.procs[-1]), "the worker node's processes listen nowhere"
        return {a for a in listening if not _loopback(a)}

    def wait_for_nodes(self, count: int = 2, timeout: float = 120) -> list[dict[str, object]]:
        """The alive nodes once ``count`` have joined (a connected driver is required)."""
        import ray

        deadline = time.monotonic() + timeout
        while len(_alive(ray.nodes())) < count and time.monotonic() < deadline:
            time.sleep(0.5)
        nodes = _alive(ray.nodes())
        assert len(nodes) >= count, f"the worker node did not join: {nodes}"
        return nodes


def free_port() -> int:
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


def _alive(nodes: list[dict[str, object]]) -> list[dict[str, object]]:
    return [n for n in nodes if n.get("Alive")]


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def start_cluster(worker_cpus: int = 1) -> Iterator[RayCluster]:
    """Start the head and one worker node; stop only the process groups started here."""
    if not RAY.exists():
        service_missing("Ray", "ray is not installed: pip install 'ghaf[ray]'")
    port = free_port()
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
            "--object-store-memory=200000000",
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
            [
                sys.executable,
                "-m",
                "tests.integration.ray_worker_node",
                f"--address={address}",
                f"--num-cpus={worker_cpus}",
                "--object-store-memory=200000000",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(worker)
        yield RayCluster(address, tuple(procs))
    finally:
        for proc in reversed(procs):
            # Only the process groups we started: never `ray stop`, which stops every Ray here.
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        # Ray's own shutdown on SIGTERM took ~30 s under CI load; the cluster is
        # throwaway (its temp dir is removed below), so its groups are killed after 10 s.
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        shutil.rmtree(temp, ignore_errors=True)
