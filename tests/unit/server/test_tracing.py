"""With ``GHAF_OTEL_ENDPOINT`` set, ``ghaf server`` sends one OTLP span per request,
continuing the caller's trace; an OTLP/HTTP receiver on 127.0.0.1 collects them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ghaf.platform import Platform
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class _Receiver(BaseHTTPRequestHandler):
    spans: ClassVar[list[Any]] = []
    arrived = threading.Condition()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.arrived:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
            self.arrived.notify_all()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Receiver.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _attributes(span: Any) -> dict[str, Any]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_each_request_is_one_span_in_the_caller_s_trace(
    platform: Platform, tmp_path: Path, collector: str
) -> None:
    token = mint(platform, "alice", ["viewer"])
    server = ServerProcess(
        platform.settings.home,
        ("server",),
        "/health",
        tmp_path / "server.log",
        env={"GHAF_OTEL_ENDPOINT": collector},
    ).start()
    try:
        answer = httpx.get(
            f"{server.url}/api/v1/runs/{'0' * 32}",
            headers={
                "authorization": f"Bearer {token}",
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
                "x-request-id": "req-7",
            },
        )
        assert answer.status_code == 404
    finally:
        server.stop()  # shutting down flushes the batch
    deadline = time.monotonic() + 30
    with _Receiver.arrived:
        while time.monotonic() < deadline and not any(
            s.trace_id.hex() == TRACE_ID for s in _Receiver.spans
        ):
            _Receiver.arrived.wait(1)
    [span] = [s for s in _Receiver.spans if s.trace_id.hex() == TRACE_ID]
    assert span.name == "GET /api/v1/runs/{run_id}"
    assert span.parent_span_id.hex() == "00f067aa0ba902b7"
    attributes = _attributes(span)
    assert attributes["ghaf.request_id"] == "req-7"
    assert attributes["enduser.id"] == "alice"
    assert attributes["http.response.status_code"] == 404
    assert attributes["http.route"] == "/api/v1/runs/{run_id}"
