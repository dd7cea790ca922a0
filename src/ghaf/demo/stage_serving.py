"""Demo stage: the champion behind a real ``ghaf serve`` process on loopback.

Requests carry the customer id and the transaction's request fields; the server looks
the customer's features up in the online store (``--entity-key``/``--features``, one
lookup per batch of concurrent requests), scores, and writes its prediction log. It
answers only the scoring service account's token. The process runs until the demo ends
(``DemoEnv.resources``), so every later stage can send it traffic.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess  # nosec B404
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from ghaf.demo.runner import DemoEnv
from ghaf.demo.state import Champion, FeatureSet, Served
from ghaf.errors import AlreadyExistsError, BackendUnavailableError

SCORER = "svc-fraud-scorer"
"""The service account the demo's clients call the model server as."""
DEPLOYMENT = "fraud-live"
READY_TIMEOUT_S = 120.0
_CHILD_ENV_DROPPED = ("GHAF_TOKEN", "GHAF_URL")
"""The server acts as the home's owner, never as a credential the caller's shell holds."""


class ModelServerProcess:
    """``python -m ghaf --home HOME serve ARGS... --port PORT`` until :meth:`stop`."""

    def __init__(self, home: Path, args: list[str], log: Path, region: str) -> None:
        self.home = home
        self.args = args
        self.log = log
        self.region = region
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start it and wait (bounded) until ``/v2/health/ready`` answers 200.

        Raises:
            BackendUnavailableError: the server exited or did not become ready; the
                message ends with what it printed.
        """
        import httpx

        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in _CHILD_ENV_DROPPED}
        env["GHAF_ARTIFACT_REGION"] = self.region  # the demo home's region
        command = [sys.executable, "-m", "ghaf", "--home", str(self.home), "serve", *self.args]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # nosec B603
                [*command, "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise BackendUnavailableError(
                        f"ghaf serve exited ({self.process.returncode}): {self._tail()}",
                        hint=f"see {self.log}",
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/v2/health/ready").status_code == 200:
                        return
                time.sleep(0.1)
        self.stop()
        raise BackendUnavailableError(
            f"ghaf serve was not ready in {timeout:.0f} s: {self._tail()}", hint=f"see {self.log}"
        )

    def stop(self) -> None:
        """SIGTERM (the server flushes its prediction log), then SIGKILL after 30 s."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    def _tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-2000:].strip() or "(no output)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scorer_token(env: DemoEnv, project: str) -> str:
    """A short-lived token of the scoring service account, bound ``model_server`` in
    ``project`` by the home's owner, as ``ghaf tokens create`` would make it."""
    from ghaf.access.bindings import bind_role, create_principal
    from ghaf.access.tokens import create_token

    platform, owner = env.platform, env.platform.admin()
    with contextlib.suppress(AlreadyExistsError):
        create_principal(platform, owner, SCORER, kind="service", description="demo scoring")
    with contextlib.suppress(AlreadyExistsError):
        bind_role(platform, owner, SCORER, "model_server", project=project)
    made = create_token(
        platform, owner, SCORER, project=project, ttl=timedelta(hours=1), description="demo"
    )
    return made.secret


def serve_champion(env: DemoEnv, champion: Champion, features: FeatureSet) -> Served:
    """Start ``ghaf serve MODEL@champion`` with online features and a prediction log."""
    import httpx

    from ghaf.monitoring.schedule import default_log_dir
    from ghaf.serving.deployments import get_deployment

    model = champion.version.name
    project = champion.version.project or env.platform.default_project
    token = scorer_token(env, project)
    # Where scheduled monitors and canaries read a home's prediction log by default.
    log_dir = default_log_dir(env.platform)
    args = [f"{model}@champion", "--deployment", DEPLOYMENT, "--log-dir", str(log_dir)]
    args += ["--entity-key", features.entity_key, "--features", features.service]
    server = ModelServerProcess(
        env.settings.home, args, env.workdir / "serve.log", env.settings.artifact_region
    )
    started = time.perf_counter()
    env.resources.callback(server.stop)
    server.start()
    seconds = time.perf_counter() - started
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        anonymous = client.post(f"/predict/{model}", json=[_probe(features)]).status_code
    record = get_deployment(env.platform, DEPLOYMENT)
    return Served(
        url=server.url,
        model=model,
        version=str(champion.version.version),
        deployment=record.name,
        revision=record.revision,
        log_dir=log_dir,
        token=token,
        project=project,
        entity_key=features.entity_key,
        feature_service=features.service,
        anonymous_status=anonymous,
        started_s=seconds,
    )


def _probe(features: FeatureSet) -> dict[str, Any]:
    return {features.entity_key: 1, **dict.fromkeys(features.request_fields, 0)}
