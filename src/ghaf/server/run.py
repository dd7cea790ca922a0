"""Run the control plane on uvicorn (uvloop, httptools): one process or N workers.

N workers each open the home's backends and listen on one port (``SO_REUSEPORT``: the
kernel spreads connections); the parent only supervises. It listens with
:mod:`ghaf.security.tls`: TLS 1.2+ (and mTLS) when a certificate is configured, plain
HTTP only on loopback or when ``tls.allow_plain_http`` is set.

    python -m ghaf.server.run   # a worker: reads its ServerConfig as JSON on stdin
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ghaf.errors import ConfigError
from ghaf.logs import get_logger
from ghaf.server.app import ServerOptions, create_app

_log = get_logger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """Where the control plane listens, how many workers answer, and its options."""

    home: str
    host: str = "127.0.0.1"
    port: int = 8700
    workers: int = 1
    options: ServerOptions = field(default_factory=ServerOptions)


def _serve_here(config: ServerConfig) -> None:
    from ghaf.platform import Platform
    from ghaf.security.tls import effective_tls, uvicorn_server
    from ghaf.server.protocol import ProblemHttpToolsProtocol
    from ghaf.serving.server import freeze_startup_heap, reuseport_socket
    from ghaf.settings import load_settings

    platform = Platform(load_settings(home=Path(config.home)))
    tls = effective_tls(platform.settings.tls, config.host)
    options = dataclasses.replace(config.options, tls=tls.cert_file is not None)
    server = uvicorn_server(
        create_app(platform, options),
        tls,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http=ProblemHttpToolsProtocol,
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
    )
    sock = reuseport_socket(config.host, config.port)
    _log.info(
        "ghaf server listening",
        url=f"{'https' if options.tls else 'http'}://{config.host}:{config.port}",
        pid=os.getpid(),
    )
    freeze_startup_heap()
    server.run(sockets=[sock])


def serve_forever(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT: in this process for one worker, else N workers."""
    if config.workers <= 1:
        _serve_here(config)
        return
    if config.port == 0:
        raise ConfigError("--workers N needs a fixed --port", hint="pick a port, e.g. --port 8700")
    from ghaf.serving.server import run_workers

    command = [sys.executable, "-m", "ghaf.server.run"]
    payload = orjson.dumps(dataclasses.asdict(config))
    run_workers([command] * config.workers, payload, host=config.host, port=config.port)


def worker_main() -> None:
    """A worker: its config as JSON on stdin, then serve on the shared port."""
    raw = orjson.loads(sys.stdin.buffer.read())
    config = ServerConfig(**{**raw, "options": ServerOptions(**raw["options"]), "workers": 1})
    _serve_here(config)


if __name__ == "__main__":
    worker_main()
