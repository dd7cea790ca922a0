"""Ghaf servers as real processes on a free loopback port, for tests over real HTTP.

Output goes to files, not pipes: a server that logs per request must never block on a
full pipe, and a test reads the log afterwards to check that no traceback escaped.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from ghaf.access.tokens import verify_token
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import ModelVersion, approve_model_version, register_model, set_alias
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor
from ghaf.testing.people import mint, person


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ghaf(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``ghaf --home HOME ARGS...`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@dataclass
class ServerProcess:
    """``ghaf --home HOME ARGS... --port PORT`` running until :meth:`stop`.

    With ``tls`` (a client context) the server is reached over https with it.
    """

    home: Path
    args: tuple[str, ...]
    health: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> ServerProcess:
        command = [sys.executable, "-m", "ghaf", "--home", str(self.home), *self.args]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.output()}")
            try:
                health = httpx.get(self.url + self.health, timeout=2, verify=self.tls or True)
                if health.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the server did not become healthy: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL) and return everything it printed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return self.output()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_records(
    platform: Platform, *, outcome: str, action: str | None = None
) -> list[AuditRecordRow]:
    """Audit records with ``outcome`` (and ``action``), oldest first."""
    query = select(AuditRecordRow).where(AuditRecordRow.outcome == outcome)
    if action is not None:
        query = query.where(AuditRecordRow.action == action)
    with platform.read_session() as session:
        rows = list(session.execute(query.order_by(AuditRecordRow.seq)).scalars())
        session.expunge_all()
    return rows


def second_person(platform: Platform) -> Actor:
    """An approver whose token another admin minted (not the author, the home's owner)."""
    project = platform.default_project
    pat = person(platform, "pat", ["project_admin"])
    token = mint(platform, "ben", ["model_approver"], bind_on=project, minted_by=pat)
    return verify_token(platform, token, source="test")


def register_champion(platform: Platform, model: Any, saved: Path, example: Any) -> ModelVersion:
    """``fraud@champion``: registered by the home's owner, approved by a second person."""
    save_model(model, saved)
    admin = platform.admin()
    version = register_model(platform, admin, "fraud", saved, example=example)
    approve_model_version(platform, second_person(platform), version.ref)
    set_alias(platform, admin, "fraud", "champion", version.version)
    return version
