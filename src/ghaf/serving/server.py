"""Run the serving app on uvicorn (uvloop + httptools): one process or N workers.

Workers share nothing but the port and a directory of metric files (so /metrics sums them
all): each is its own process that binds the port with
``SO_REUSEPORT`` (the kernel spreads connections), loads its own models and runs with
its math-library thread count set before NumPy loads. Every accepted socket gets
``TCP_NODELAY`` (uvicorn issue #3149: without it, keep-alive requests wait ~40 ms for a
delayed ACK).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess  # nosec B404
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from ghaf.backends import open_prediction_sink
from ghaf.errors import ConfigError
from ghaf.logs import get_logger
from ghaf.security.tls import effective_tls, is_loopback

_log = get_logger(__name__)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@dataclass
class ServeConfig:
    """Everything a worker needs, JSON-able so it crosses to worker processes."""

    models: list[dict[str, Any]]
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 1
    max_batch_rows: int = 4096
    max_wait_ms: float = 0.0
    max_queue_rows: int = 65536
    max_body_bytes: int = 8 << 20
    log_dir: str | None = None
    log_to_bus: bool = False
    home: str | None = None
    insecure_dev: bool = False
    metrics_public: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    watch: dict[str, str] = field(default_factory=dict)
    """Served model -> deployment record whose revisions the workers follow live."""
    poll_interval: float = 1.0
    metrics_dir: str | None = None
    """The multi-worker server's shared metric files (set by :func:`supervise`)."""
    workdir: str | None = None
    """Where the workers download a version a new revision names (its scratch directory:
    decrypted models never leave the home); None: such a revision waits for a restart."""


def model_entry(
    spec: Any, *, weight: float = 1.0, shadow: bool = False, **extra: Any
) -> dict[str, Any]:
    """A ``ServeConfig.models`` entry for a :class:`~ghaf.serving.base.ModelSpec`."""
    return {
        "name": spec.name,
        "version": str(spec.version),
        "flavor": spec.flavor,
        "path": str(spec.path),
        "signature": spec.signature.to_json() if spec.signature else None,
        "options": dict(spec.options),
        "project": spec.project,
        "weight": weight,
        "shadow": shadow,
        **extra,
    }


def thread_environment(threads: int) -> dict[str, str]:
    """The environment that pins OpenMP/BLAS thread pools to ``threads``."""
    return dict.fromkeys(THREAD_VARIABLES, str(threads))


def build_app(config: ServeConfig, platform: Any = None, worker: str = "0") -> Any:
    """Load every model of ``config`` (refused ones stay not-ready) into a ``ServingApp``.

    Every request but health checks is authenticated and authorized against
    ``platform`` unless ``config.insecure_dev`` (loopback only, logged at each start).

    Raises:
        ConfigError: ``insecure_dev`` off a loopback address, or no platform to check
            credentials against.
    """
    from ghaf.access.guard import RequestGuard, check_insecure_dev
    from ghaf.health import BackendHealth
    from ghaf.serving.app import Deployment, ServingApp
    from ghaf.serving.base import ModelSpec, Signature
    from ghaf.serving.batching import BatchPolicy
    from ghaf.serving.metrics import Metrics
    from ghaf.serving.models import load_served
    from ghaf.serving.predlog import PredictionLogger, PredictionSink
    from ghaf.serving.records import OnlineStoreLookup
    from ghaf.serving.traffic import TrafficSplit

    if config.insecure_dev:
        check_insecure_dev(config.host, "model server")
    elif platform is None:
        raise ConfigError(
            "the model server needs a platform home to check credentials",
            hint="set --home (or GHAF_HOME); for local development only: --insecure-dev",
        )
    policy = BatchPolicy(
        max_batch_rows=config.max_batch_rows,
        max_wait_ms=config.max_wait_ms,
        max_queue_rows=config.max_queue_rows,
        threads=config.threads,
    )
    grouped: dict[str, dict[str, Any]] = {}
    for raw in config.models:
        signature = Signature.from_json(raw["signature"]) if raw.get("signature") else None
        spec = ModelSpec(
            raw["name"],
            str(raw["version"]),
            raw["flavor"],
            Path(raw["path"]),
            signature,
            dict(raw.get("options") or {}),
            project=raw.get("project"),
        )
        served = load_served(spec, platform=platform, policy=policy)
        entry = grouped.setdefault(
            spec.name, {"versions": {}, "weights": {}, "shadow": None, "features": None}
        )
        entry["features"] = entry["features"] or raw.get("features")
        entry["versions"][spec.version] = served
        if raw.get("shadow"):
            entry["shadow"] = spec.version
        else:
            entry["weights"][spec.version] = float(raw.get("weight", 1.0))
    deployments = []
    backends: dict[str, object] = {}  # what readiness depends on beyond the models
    for name, e in grouped.items():
        split = TrafficSplit(e["weights"], shadow=e["shadow"])
        features = e["features"]
        if features and platform is not None:
            key = str(features["entity_key"])
            lookup = OnlineStoreLookup(platform, key, features["refs"])
            deployments.append(Deployment(name, e["versions"], split, key, lookup))
            from ghaf.features.online import online_reader  # the store the lookup reads

            backends["online_store"] = online_reader(platform).store
        else:
            deployments.append(Deployment(name, e["versions"], split))
    sinks: list[PredictionSink] = []
    if config.log_dir:
        log_url = Path(config.log_dir).resolve().as_uri()
        keys = _log_keys(platform)
        sinks.append(open_prediction_sink(log_url, prefix=f"predictions-w{worker}", keys=keys))
    if config.log_to_bus and platform is not None:
        sinks.append(open_prediction_sink("events://", events=platform.events))
        backends["event_bus"] = platform.events
    logger = PredictionLogger(sinks) if sinks else None
    app = ServingApp(
        deployments,
        metrics=Metrics(worker, shared_dir=config.metrics_dir),
        prediction_log=logger,
        max_body_bytes=config.max_body_bytes,
        guard=None if config.insecure_dev else RequestGuard(platform),
        metrics_public=config.metrics_public,
        backends=BackendHealth(backends),
        watcher=_watcher(config, platform, set(grouped)),
        loader=_loader(config, platform, policy, grouped, worker),
    )
    app.sync_routes()  # serve the record's current revision from the first request
    return app


def _log_keys(platform: Any) -> Any:
    """The KEK the prediction log is encrypted with (its files hold features, maybe pii);
    a log without a home would be plaintext at rest, so it is refused."""
    from ghaf.serving.predlog import prediction_log_keys

    if platform is None:
        raise ConfigError(
            "--log-dir needs a platform home: the prediction log is encrypted with its KEK",
            hint="set --home (or GHAF_HOME), or serve without --log-dir",
        )
    return prediction_log_keys(platform)


def _loader(
    config: ServeConfig, platform: Any, policy: Any, grouped: dict[str, Any], worker: str
) -> Any:
    """What loads a version a new revision names, as the start loaded the first ones:
    from the registry of the served model's project, the release policy asked, its
    signature verified (None: no home, nothing watched, or no scratch directory)."""
    if platform is None or not config.watch or config.workdir is None:
        return None
    from ghaf.serving.models import load_served, resolve_model

    projects = {
        name: next((s.spec.project for s in e["versions"].values() if s.spec.project), None)
        for name, e in grouped.items()
    }
    root = Path(config.workdir) / f"hot-w{worker}"  # each worker its own downloads

    def load(model: str, version: str) -> Any:
        project = projects.get(model)
        where = platform.in_project(project) if project else platform
        spec = resolve_model(where, f"{model}:{version}", root)
        return load_served(spec, platform=platform, policy=policy)

    return load


def _watcher(config: ServeConfig, platform: Any, served: set[str]) -> Any:
    """A watcher of the deployment records of ``config.watch`` (None without a platform)."""
    names = {model: record for model, record in config.watch.items() if model in served}
    if platform is None or not names:
        return None
    from ghaf.serving.live import DeploymentWatcher

    return DeploymentWatcher(platform, names, config.poll_interval)


def tls_settings(platform: Any, host: str) -> Any:
    """The TLS settings a server on ``host`` listens with (see ``effective_tls``)."""
    from ghaf.settings import TlsSettings

    tls = platform.settings.tls if platform is not None else TlsSettings()
    return effective_tls(tls, host)


def _protocol_class() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        """httptools protocol that disables Nagle on every accepted connection."""

        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

    return NoDelayHttpToolsProtocol


def uvicorn_server(app: Any, host: str, port: int, tls: Any = None) -> Any:
    """A ``uvicorn.Server`` (uvloop, httptools with TCP_NODELAY, no access log).

    It listens with ``ghaf.security.tls`` (TLS 1.2+, optional mTLS) per ``tls``
    (:func:`tls_settings`; default: loopback plain HTTP only).
    """
    from ghaf.security.tls import uvicorn_server as tls_server

    return tls_server(
        app,
        tls if tls is not None else tls_settings(None, host),
        host=host,
        port=port,
        loop="uvloop",
        http=_protocol_class(),
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        backlog=4096,
    )


def reuseport_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT (the only thing workers share), listening.

    ``listen=False`` only reserves the port: the kernel spreads connections over the
    *listening* sockets of the group, so a holder that never accepts must not listen.
    """
    if not is_loopback(host):
        _log.warning("serving on a non-loopback address", host=host)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(4096)
    sock.setblocking(False)
    return sock


def serve_forever(config: ServeConfig, platform: Any = None, recorder: Any = None) -> None:
    """Serve until interrupted: in this process for one worker, else N worker processes.

    ``recorder`` (a :class:`~ghaf.cost.recorder.SegmentRecorder`) records what the server
    holds and uses, and the predictions it serves, while it runs.
    """
    if config.workers <= 1:
        app = build_app(config, platform)
        server = uvicorn_server(app, config.host, config.port, tls_settings(platform, config.host))
        sock = reuseport_socket(config.host, config.port)
        freeze_startup_heap()
        if recorder is None:
            server.run(sockets=[sock])
            return
        from ghaf.serving.metering import rows_scored

        recorder.count_predictions(lambda: rows_scored(app.metrics))
        with recorder:
            server.run(sockets=[sock])
        return
    supervise(config, recorder)


def supervise(config: ServeConfig, recorder: Any = None) -> None:
    """Start ``config.workers`` worker processes on one port and wait for them."""
    if config.port == 0:
        raise ConfigError("--workers N needs a fixed --port", hint="pick a port, e.g. --port 8080")
    if config.insecure_dev:
        from ghaf.access.guard import check_insecure_dev

        check_insecure_dev(config.host, "model server")  # before the port is reserved
    from ghaf.serving.metrics import MULTIPROC_VARIABLE, mark_worker_dead, shared_metrics_dir

    with shared_metrics_dir() as metrics_dir, ExitStack() as metered:
        shared = str(metrics_dir)  # /metrics sums every worker's files
        config = replace(config, metrics_dir=shared)
        if recorder is not None:
            from ghaf.serving.metering import rows_scored_in

            recorder.count_predictions(lambda: rows_scored_in(shared))
            metered.enter_context(recorder)
        run_workers(
            [[sys.executable, "-m", "ghaf.serving.worker", str(i)] for i in range(config.workers)],
            orjson.dumps(asdict(config)),
            host=config.host,
            port=config.port,
            env={**os.environ, **thread_environment(config.threads), MULTIPROC_VARIABLE: shared},
            on_exit=lambda pid: mark_worker_dead(shared, pid),
        )


def run_workers(
    commands: list[list[str]],
    payload: bytes,
    *,
    host: str,
    port: int,
    env: dict[str, str] | None = None,
    on_exit: Callable[[int], None] | None = None,
) -> None:
    """Run one worker process per command, each given ``payload`` on stdin, until they
    all exit; SIGTERM or SIGINT stops them all. The port is held (not listened on) while
    they run, so nothing else takes it between their restarts. ``on_exit(pid)`` runs as
    soon as each worker exits, however it ends."""
    holder = reuseport_socket(host, port, listen=False)  # reserves the port
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, env=env)  # nosec B603
        for command in commands
    ]
    for child in children:
        assert child.stdin is not None  # nosec B101
        child.stdin.write(payload)
        child.stdin.close()
        if on_exit is not None:
            threading.Thread(
                target=_on_exit, args=(child, on_exit), name="ghaf-worker-exit", daemon=True
            ).start()

    def stop(*_: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.wait()
    finally:
        stop()
        holder.close()
        for sig, handler in previous.items():  # the caller's own (its cleanup, say) again
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def _on_exit(child: subprocess.Popen[bytes], callback: Callable[[int], None]) -> None:
    child.wait()
    try:
        callback(child.pid)
    except Exception as exc:  # noqa: BLE001 - a failed cleanup must not stop the others
        _log.warning("worker exit cleanup failed", pid=child.pid, error=str(exc))


def freeze_startup_heap() -> None:
    """Move everything allocated while loading (libraries, models) out of the collector's way.

    A full collection of a loaded worker's ~340k objects took 200-380 ms on two cores, and
    logged predictions that live through a flush interval make full collections come more
    often: they were the 1-row p99's outliers. After ``gc.freeze`` a full collection scans
    only what requests allocate.
    """
    gc.collect()
    gc.freeze()


def worker_main(index: str) -> None:
    """Worker process entry: read the config from stdin, load models, serve."""
    config = ServeConfig(**orjson.loads(sys.stdin.buffer.read()))
    platform = None
    if config.home:
        from ghaf.platform import Platform
        from ghaf.settings import load_settings

        platform = Platform(load_settings(home=Path(config.home)))
    app = build_app(config, platform, worker=index)
    server = uvicorn_server(app, config.host, config.port, tls_settings(platform, config.host))
    sock = reuseport_socket(config.host, config.port)
    freeze_startup_heap()
    server.run(sockets=[sock])


class BackgroundServer:
    """Run an app on uvicorn in a background thread (tests, the demo, notebooks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, tls: Any = None) -> None:
        self.app = app
        self.sock = reuseport_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn_server(app, host, self.port, tls)
        self.scheme = "https" if self.server.config.ssl is not None else "http"
        self._thread = threading.Thread(target=self._run, name="ghaf-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def _run(self) -> None:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self.server.serve(sockets=[self.sock]))

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ConfigError("the server did not start", hint="see the log above")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self.sock.close()


@contextmanager
def background_server(
    app: Any, host: str = "127.0.0.1", port: int = 0, tls: Any = None
) -> Iterator[str]:
    """Serve ``app`` for the duration of the block; yields its base URL (http or https)."""
    server = BackgroundServer(app, host, port, tls).start()
    try:
        yield server.url
    finally:
        server.stop()
