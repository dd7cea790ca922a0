"""A small OIDC provider on 127.0.0.1 for the device flow and JWKS rotation: discovery,
a JWKS a test can change, and a device endpoint whose token polls answer as scripted.

The npm ``oidc-provider`` (tests/integration/oidc) covers real logins; a device-flow
approval there needs a person at its pages, so the flow's polling is tested here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class Idp:
    """Serves a discovery document and a JWKS that a test can change."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.jwks_hits = 0
        self.polls: list[str] = []  # device flow: what each token poll answers, in order
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body: dict[str, Any]
                if self.path.endswith("openid-configuration"):
                    body = {
                        "issuer": idp.issuer,
                        "jwks_uri": idp.issuer + "/jwks",
                        "token_endpoint": idp.issuer + "/token",
                        "device_authorization_endpoint": idp.issuer + "/device/auth",
                    }
                else:
                    idp.jwks_hits += 1
                    body = {"keys": idp.keys}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                status, body = 200, {}
                if self.path == "/device/auth":
                    assert form["client_id"] == ["cli"]
                    body = {
                        "device_code": "dc-1",
                        "user_code": "ABCD-EFGH",
                        "verification_uri": idp.issuer + "/device",
                        "expires_in": 60,
                        "interval": 1,
                    }
                else:
                    assert form["device_code"] == ["dc-1"]
                    answer = idp.polls.pop(0)
                    if answer.startswith("token:"):
                        body = {"access_token": answer[6:], "token_type": "Bearer"}
                    else:
                        status, body = 400, {"error": answer}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, key: Any, kid: str, algorithm: Any) -> None:
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        jwk["kid"] = kid
        self.keys.append(jwk)


@contextmanager
def running_idp() -> Iterator[Idp]:
    """An :class:`Idp` serving on a loopback port until the block ends."""
    server = Idp()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
