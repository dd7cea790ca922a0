"""Real log receivers on 127.0.0.1 for the shipping tests: a syslog-over-TLS server
(RFC 5425 octet counting) and an HTTPS JSON collector, each able to be down on demand."""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ghaf.security.tls import DevPki

FRAME = re.compile(rb"([1-9][0-9]*) ")
Outage = Callable[[], str | None]
"""Asked at each connection: None (up), 'reset' (refuse), 'noread' (TLS, then drop)."""


def _up() -> str | None:
    return None


def server_context(pki: DevPki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    return context


def split_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete octet-counted frames in ``buffer``, and the incomplete rest."""
    frames = []
    while True:
        match = FRAME.match(buffer)
        if match is None or len(buffer) < match.end() + int(match.group(1)):
            return frames, buffer
        end = match.end() + int(match.group(1))
        frames.append(buffer[match.end() : end])
        buffer = buffer[end:]


class SyslogReceiver:
    """Accepts one connection at a time; keeps every message as it arrives (as rsyslog
    writes each line), and answers close_notify with its own."""

    def __init__(self, pki: DevPki, outage: Outage = _up) -> None:
        self.context = server_context(pki)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.outage = outage
        self.messages: list[bytes] = []
        self.connections: list[list[bytes]] = []
        self.refused: list[str] = []
        self.hold_after: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.listener.close()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            raw.settimeout(30)
            try:
                self._handle(raw)
            except OSError:
                pass
            finally:
                raw.close()
                self.done.set()

    def _handle(self, raw: socket.socket) -> None:
        mode = self.outage()
        if mode == "reset":
            self.refused.append(mode)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        with self.context.wrap_socket(raw, server_side=True) as tls:
            if mode == "noread":  # handshake done, nothing read: the data is dropped
                self.refused.append(mode)
                return
            self._read(tls)

    def _read(self, tls: ssl.SSLSocket) -> None:
        frames: list[bytes] = []
        self.connections.append(frames)
        buffer = b""
        while chunk := tls.recv(65536):
            got, buffer = split_frames(buffer + chunk)
            frames.extend(got)
            self.messages.extend(got)
            if self.hold_after is not None and len(frames) >= self.hold_after:
                self.hold_after = None
                self.holding.set()
                self.release.wait(30)
        tls.unwrap()  # our close_notify: the sender's acknowledgement


class HttpReceiver:
    """An HTTPS collector: each POST's records are kept in order; 503 while down."""

    def __init__(self, pki: DevPki, token: str, outage: Outage = _up) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.keys: list[str] = []
        self.refused: list[int] = []
        self.outage = outage
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self._answer(401)
                    return
                if receiver.outage() is not None:
                    receiver.refused.append(503)
                    self._answer(503)
                    return
                receiver.batches.append(json.loads(body)["records"])
                receiver.keys.append(self.headers["Idempotency-Key"])
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = server_context(pki).wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for batch in self.batches for record in batch]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
