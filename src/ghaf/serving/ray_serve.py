"""``ghaf serve --on ray://HOST:PORT``: the same serving app, deployed on Ray Serve.

Each Ray Serve replica runs exactly what a ``ghaf serve`` worker runs: its constructor
opens the home, downloads the pinned model versions into a scratch directory of its own,
verifies their signatures and release, loads and warms them (``build_app``), and only
then returns. Ray Serve sends a replica traffic only once its constructor has returned,
so a replica whose model is still loading takes none (KServe #1247: pods killed while
loading), and one whose model is refused raises in its constructor and never takes any:
Ray Serve retries it and then marks the deployment failed, with the reason.

The app is the raw ASGI :class:`~ghaf.serving.app.ServingApp` behind ``serve.ingress``
(late-bound, ``__serve_build_asgi_app__``): OIP v2 (what ``tritonclient`` speaks), the
records endpoint, authentication and authorization, batching, prediction logging and
per-replica ``/metrics`` are the ones of ``ghaf serve``.

Scaling is Ray Serve's request-based autoscaler, configured from ``serving.ray``
(:class:`~ghaf.settings.RayServeSettings`): target in-flight requests per replica,
min/max replicas, upscale and downscale delays, and scale to zero with its own delay.
A request that arrives while no replica runs waits in Serve's proxy (at most
``max_queued_requests`` of them, each at most ``request_timeout_s``) while one starts,
instead of failing (KServe #2882).

``HOST:PORT`` is the address of the cluster's head (its GCS, what ``ray start --head
--port`` listens on). The Serve HTTP proxy listens on ``ghaf serve``'s ``--host`` and
``--port`` (loopback by default; elsewhere only with TLS, as ``ghaf serve``); no gRPC
proxy is started.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ghaf.errors import ConfigError, GhafError, IntegrityError
from ghaf.logs import get_logger
from ghaf.serving.server import ServeConfig, model_entry, thread_environment

_log = get_logger(__name__)
DEPLOYMENT = "ghaf"
"""The name of the one Serve deployment of each application (its replicas hold every
model the command serves, as a ``ghaf serve`` worker does)."""


def model_ref(
    spec: Any, ref: str, *, shadow: bool = False, features: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a replica resolves ``spec`` from, itself: the version the command resolved
    (``name:version`` in its project, so every replica serves the same one), or the
    signed model directory ``ref`` given on the command line."""
    directory = Path(ref).is_dir()
    return {
        "ref": str(Path(ref).resolve()) if directory else f"{spec.name}:{spec.version}",
        "directory": directory,
        "flavor": spec.flavor,
        "project": spec.project,
        "shadow": shadow,
        "features": features,
    }


def deployment_options(settings: Any, threads: int = 1) -> dict[str, Any]:
    """``serve.deployment`` options from ``serving.ray`` settings (a ``RayServeSettings``)."""
    autoscaling = {
        "min_replicas": settings.min_replicas,
        "max_replicas": settings.max_replicas,
        "initial_replicas": settings.initial_replicas,
        "target_ongoing_requests": settings.target_ongoing_requests,
        "upscale_delay_s": settings.upscale_delay_s,
        "downscale_delay_s": settings.downscale_delay_s,
        "downscale_to_zero_delay_s": settings.downscale_to_zero_delay_s,
        "look_back_period_s": settings.look_back_period_s,
        "metrics_interval_s": settings.metrics_interval_s,
    }
    return {
        "name": DEPLOYMENT,
        "autoscaling_config": autoscaling,
        "max_ongoing_requests": settings.max_ongoing_requests,
        "max_queued_requests": settings.max_queued_requests,
        "ray_actor_options": {
            "num_cpus": settings.num_cpus,
            # Math-library pools sized as `ghaf serve --threads` sizes a worker's.
            "runtime_env": {"env_vars": thread_environment(threads)},
        },
        "health_check_period_s": 10.0,
    }


# Replica side --------------------------------------------------------------------------


class ModelRefusedError(IntegrityError):
    """A replica's model did not load or verify: the replica never takes traffic."""


class GhafReplica:
    """One Ray Serve replica: the app a ``ghaf serve`` worker builds, built before it is
    ready. ``payload``: ``{"config": ServeConfig as a dict, "models": [model_ref...]}``."""

    def __init__(self, payload: dict[str, Any]) -> None:
        keep_replica_grpc_on_node_ip()
        self._stack = ExitStack()
        try:
            self._app = replica_app(payload, self._stack, _replica_name())
        except BaseException:
            self._stack.close()
            raise

    def __serve_build_asgi_app__(self) -> Any:
        return self._app

    def check_health(self) -> None:
        """Ray Serve's periodic check: unhealthy (replaced) if a served version is unready."""
        for deployment in self._app.deployments.values():
            for version, served in deployment.versions.items():
                if not served.ready:
                    raise ModelRefusedError(f"{deployment.name}:{version}: {served.error}")

    def __del__(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()  # the decrypted models go with the replica


def keep_replica_grpc_on_node_ip() -> None:
    """Bind the replica's inter-deployment gRPC server to the node's IP, not every interface.

    Ray Serve 2.60 starts that server in every replica on ``[::]:0`` (all interfaces,
    plaintext; ray-project/ray#64544, from #59908), after the constructor returns. Callers
    reach a replica at its node's IP, so binding there changes nothing for them, and a
    cluster kept on 127.0.0.1 then listens on loopback only. Patched in this replica's own
    process, before Serve starts the server; a Ray without that helper is left alone.
    """
    replica_module: Any = sys.modules.get("ray.serve._private.replica")
    if replica_module is None:  # not in a Serve replica (a test building one in-process)
        return
    ray_util: Any = importlib.import_module("ray.util")
    original = getattr(replica_module, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "_ghaf_node_ip", False):
        return
    node_ip = str(ray_util.get_node_ip_address())
    host = f"[{node_ip}]" if ":" in node_ip else node_ip

    def bind(server: Any, address: str) -> Any:
        if address.startswith("[::]:"):
            address = f"{host}:{address.removeprefix('[::]:')}"
        return original(server, address)

    bind._ghaf_node_ip = True  # type: ignore[attr-defined]
    replica_module.add_port_to_grpc_server = bind


def _replica_name() -> str:
    serve: Any = sys.modules.get("ray.serve")
    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # noqa: BLE001 - outside a replica (tests): any stable name will do
        return "ray"


def replica_app(payload: dict[str, Any], stack: ExitStack, worker: str = "ray") -> Any:
    """Resolve, verify, load and warm every model of ``payload`` into a ``ServingApp``.

    Raises:
        ModelRefusedError: a model was refused or failed to load (with every reason).
        GhafError: a model could not be resolved (not found, release policy, digest).
    """
    from ghaf.artifacts.scratch import scratch_dir
    from ghaf.platform import Platform
    from ghaf.serving.models import local_model, resolve_model
    from ghaf.serving.server import build_app
    from ghaf.settings import load_settings

    config = ServeConfig(**payload["config"])
    if config.home is None:
        raise ConfigError("a Ray Serve replica needs the platform home", hint="set --home")
    home = Path(config.home)
    platform = Platform(load_settings(home=home))
    stack.callback(platform.close)
    workdir = stack.enter_context(scratch_dir(home, "serve-ray-"))
    entries = []
    for model in payload["models"]:
        if model["directory"]:
            spec = local_model(platform.settings, Path(model["ref"]), model["flavor"])
        else:
            where = platform.in_project(model["project"]) if model["project"] else platform
            spec = resolve_model(where, model["ref"], workdir)
        entries.append(model_entry(spec, shadow=model["shadow"], features=model["features"]))
    config = replace(config, models=entries, workdir=str(workdir))
    app = build_app(config, platform, worker=worker)
    refused = [
        f"{name}:{version}: {served.error}"
        for name, deployment in app.deployments.items()
        for version, served in deployment.versions.items()
        if not served.ready
    ]
    if refused:
        if app.prediction_log is not None:
            app.prediction_log.close()
        raise ModelRefusedError(
            f"model refused, this replica takes no traffic: {'; '.join(refused)}",
            hint="see `ghaf models verify`; the deployment stays unhealthy until fixed",
        )
    return app


# Driver side ---------------------------------------------------------------------------


@dataclass
class RayServeApp:
    """A Serve application deployed by :func:`deploy`: its URL, its replicas, its removal."""

    name: str
    url: str
    serve: Any

    def replicas(self) -> dict[str, int]:
        """Replicas of the deployment by state (``RUNNING``, ``STARTING``, ...)."""
        with quiet_serve():
            application = self.serve.status().applications.get(self.name)
        if application is None or DEPLOYMENT not in application.deployments:
            return {}
        states = application.deployments[DEPLOYMENT].replica_states
        return {str(getattr(k, "value", k)): int(v) for k, v in states.items() if v}

    def running(self) -> int:
        """Replicas that take traffic."""
        return self.replicas().get("RUNNING", 0)

    def status(self) -> str:
        with quiet_serve():
            application = self.serve.status().applications.get(self.name)
        return "NOT_DEPLOYED" if application is None else str(application.status.value)

    def remove(self) -> None:
        """Delete the application (its replicas stop; Serve itself keeps running)."""
        with quiet_serve():
            self.serve.delete(self.name)

    def watch(self, on_change: Callable[[dict[str, int]], None], every_s: float = 1.0) -> None:
        """Call ``on_change`` with the replica counts whenever they change, until interrupted."""
        last: dict[str, int] | None = None
        while True:
            try:
                counts = self.replicas()
            except Exception as exc:  # noqa: BLE001 - keep serving; the controller may be busy
                _log.warning("Serve status failed", error=str(exc))
            else:
                if counts != last:
                    on_change(counts)
                    last = counts
            time.sleep(every_s)


def deploy(
    address: str,
    config: ServeConfig,
    models: list[dict[str, Any]],
    settings: Any,
    *,
    name: str,
    tls: Any = None,
) -> RayServeApp:
    """Start Serve on the cluster at ``address`` (its HTTP proxy on ``config.host`` and
    ``config.port``) and deploy ``models`` as application ``name``; returns once the
    application runs (its ``min_replicas`` loaded and verified).

    Raises:
        ConfigError: Serve already listens elsewhere on this cluster, or the app failed
            to deploy (a model refused in every replica, say), with Serve's reason.
        BackendUnavailableError: the cluster cannot be reached.
    """
    from ghaf.pipelines.ray import connect_ray
    from ghaf.security.tls import server_ssl_context

    if tls is not None:
        server_ssl_context(tls, what="Ray Serve proxy")  # refused off loopback without TLS
    connect_ray(address)
    serve = import_serve()
    from ray.serve.config import AutoscalingConfig

    http: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "request_timeout_s": settings.request_timeout_s,
    }
    if tls is not None and tls.cert_file is not None:
        http.update(ssl_certfile=str(tls.cert_file), ssl_keyfile=str(tls.key_file))
        if getattr(tls, "client_ca_file", None):
            http["ssl_ca_certs"] = str(tls.client_ca_file)
    serve.start(proxy_location=settings.proxy_location, http_options=http)
    _check_proxy(serve, config.host, config.port)
    options = deployment_options(settings, config.threads)
    payload = {"config": asdict(config), "models": models}
    try:
        with quiet_serve():
            options["autoscaling_config"] = AutoscalingConfig(**options["autoscaling_config"])
            replica = serve.deployment(**options)(serve.ingress()(GhafReplica))
            serve.run(replica.bind(payload), name=name, route_prefix="/", blocking=False)
    except Exception as exc:  # RuntimeError (deploy failed) and Ray's own errors
        why = _failure_reason(serve, name)
        with suppress(Exception), quiet_serve():
            serve.delete(name)  # a failed application retries no more replicas
        if isinstance(exc, GhafError):
            raise
        lines = str(exc).strip().splitlines()
        why = why or (lines[-1] if lines else type(exc).__name__)
        raise ConfigError(
            f"Ray Serve did not deploy {name}: {why}",
            hint="see the replica logs in the Ray session directory (logs/serve/)",
        ) from exc
    scheme = "https" if tls is not None and tls.cert_file is not None else "http"
    return RayServeApp(name, f"{scheme}://{config.host}:{config.port}", serve)


_QUIET = threading.Lock()


@contextmanager
def quiet_serve() -> Iterator[None]:
    """Ray Serve calls without its deprecation warnings: ``metrics_interval_s`` warns each
    time Serve validates an autoscaling config (``serve.status()`` included), though it is
    still the interval the proxy reports in-flight requests at (a faster reaction to load
    than the 10 s default)."""
    with _QUIET, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _failure_reason(serve: Any, name: str) -> str | None:
    """The error a failed replica constructor raised (a refused model, say), from the
    deployment's status message: its last line that names an error."""
    try:
        with quiet_serve():
            application = serve.status().applications.get(name)
        message = str(application.deployments[DEPLOYMENT].message)
    except Exception:  # noqa: BLE001 - no status: the caller falls back to the exception
        return None
    named = [line.strip() for line in message.splitlines() if "Error" in line]
    return named[-1][:500] if named else None


def import_serve() -> Any:
    """``ray.serve``, imported without its import-time deprecation warnings (third-party
    noise: Ray's models use pydantic v1 idioms)."""
    with quiet_serve():
        from ray import serve

    return serve


def _check_proxy(serve: Any, host: str, port: int) -> None:
    """Serve's HTTP options are the cluster's, set when Serve first started there."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:
        raise ConfigError("Ray Serve did not start on the cluster", hint="see the Ray logs")
    current = client.http_config
    if (current.host, int(current.port)) != (host, port):
        raise ConfigError(
            f"Ray Serve already runs on this cluster with its proxy on "
            f"{current.host}:{current.port}, not {host}:{port}",
            hint=f"use --host {current.host} --port {current.port}, or `serve shutdown` first",
        )


def serve_on_ray(
    cli: Any, address: str, config: ServeConfig, models: list[dict[str, Any]], *, name: str
) -> None:
    """``ghaf serve --on ray://...``: deploy, print the URL and the replica counts as they
    change, until interrupted; the application is removed on the way out, however it ends."""
    from ghaf.serving.server import tls_settings

    if config.port == 0:
        from ghaf.serving.server import reuseport_socket

        with reuseport_socket(config.host, 0, listen=False) as probe:
            config = replace(config, port=int(probe.getsockname()[1]))
    tls = tls_settings(cli.platform(), config.host)
    settings = cli.settings.serving.ray
    app: RayServeApp | None = None
    scheme = "https" if tls is not None and tls.cert_file is not None else "http"
    # Said before deploying: the proxy answers as soon as the replicas are ready, which
    # can be before Serve's deploy call returns here.
    cli.console.print(
        f"serving {name} on Ray Serve at {scheme}://{config.host}:{config.port} (cluster "
        f"{address}; replicas {settings.min_replicas}..{settings.max_replicas}, target "
        f"{settings.target_ongoing_requests:g} in flight each)"
    )
    try:  # a SIGTERM while it deploys removes the application too
        app = deploy(address, config, models, settings, name=name, tls=tls)

        def report(counts: dict[str, int]) -> None:
            shown = ", ".join(f"{state.lower()} {n}" for state, n in sorted(counts.items()))
            cli.console.print(f"replicas: {shown or 'none'}")
            _log.info("ray serve replicas", application=name, **counts)

        app.watch(report)
    finally:
        if app is not None:
            app.remove()
        else:
            import ray

            if ray.is_initialized():  # never start a Ray only to delete from it
                with suppress(Exception), quiet_serve():
                    import_serve().delete(name)
        _log.info("ray serve application removed", application=name)
