"""The server over real HTTP on 127.0.0.1: OIP v2 (JSON, binary), records, errors, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from ghaf.platform import Platform
from ghaf.serving.app import Deployment, ServingApp
from ghaf.serving.base import ModelSpec
from ghaf.serving.batching import BatchPolicy
from ghaf.serving.models import load_served
from ghaf.serving.predlog import ParquetSink, PredictionLogger
from ghaf.serving.records import DictLookup
from ghaf.serving.server import background_server

N = 8


def _oip(rows: np.ndarray, name: str = "input", datatype: str = "FP32") -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": list(rows.shape), "datatype": datatype,
                        "data": rows.ravel().tolist()}]}  # fmt: skip


@pytest.fixture
def server(platform: Platform, hgb_spec: ModelSpec, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    served = load_served(hgb_spec, platform=platform)
    assert served.ready, served.error
    lookup = DictLookup({"c1": {f"f{i}": 0.1 * i for i in range(N)}})
    deployment = Deployment.of(served, entity_key="customer_id", features=lookup)
    logger = PredictionLogger([ParquetSink(tmp_path / "log")], flush_every=0.05)
    app = ServingApp([deployment], prediction_log=logger, max_body_bytes=200_000)
    with background_server(app) as url:
        yield url, app


def test_oip_json_matches_predict_proba(server: tuple[str, Any], trained: Any) -> None:
    url, _ = server
    rows = trained.X[:4]
    reply = httpx.post(f"{url}/v2/models/fraud/infer", json=_oip(rows))
    assert reply.status_code == 200
    out = reply.json()["outputs"][0]
    assert out["name"] == "probabilities" and out["shape"] == [4, 2]
    np.testing.assert_allclose(np.reshape(out["data"], (4, 2)), trained.model.predict_proba(rows))


def test_tritonclient_json_and_binary(server: tuple[str, Any], trained: Any) -> None:
    import tritonclient.http as triton

    url, _ = server
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("fraud")
    rows = trained.X[:5].astype(np.float32)
    want = trained.model.predict_proba(rows)
    for binary in (False, True):
        tensor = triton.InferInput("input", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        requested = triton.InferRequestedOutput("probabilities", binary_data=binary)
        result = client.infer("fraud", [tensor], outputs=[requested])
        np.testing.assert_allclose(result.as_numpy("probabilities"), want)
    result = client.infer("fraud", [tensor])  # no outputs named: binary by default
    np.testing.assert_allclose(result.as_numpy("probabilities"), want)
    metadata = client.get_model_metadata("fraud")
    assert metadata["inputs"][0]["shape"] == [-1, N]


def test_records_endpoint_with_features_and_entity_ids(
    server: tuple[str, Any], trained: Any
) -> None:
    url, _ = server
    record = {f"f{i}": float(v) for i, v in enumerate(trained.X[0])}
    reply = httpx.post(f"{url}/predict", json=[record])
    assert reply.status_code == 200
    np.testing.assert_allclose(
        reply.json()["outputs"]["probabilities"][0], trained.model.predict_proba(trained.X[:1])[0]
    )
    by_id = httpx.post(f"{url}/predict/fraud", json={"records": [{"customer_id": "c1"}]})
    assert by_id.status_code == 200 and "id" not in by_id.json()
    expected = trained.model.predict_proba(np.array([[0.1 * i for i in range(N)]]))
    np.testing.assert_allclose(by_id.json()["outputs"]["probabilities"], expected, rtol=1e-5)
    # The caller's id of the prediction (what it reports the outcome against) comes back.
    named = httpx.post(f"{url}/predict/fraud", json={"id": "tx-7", "records": [record]})
    assert named.status_code == 200 and named.json()["id"] == "tx-7"
    bad = httpx.post(f"{url}/predict/fraud", json={"id": 7, "records": [record]})
    assert bad.status_code == 400 and '"id" must be a non-empty string' in bad.json()["error"]
    unknown = httpx.post(f"{url}/predict", json=[{"customer_id": "nobody"}])
    assert unknown.status_code == 400 and "nobody" in unknown.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"inputs": []}', 400, "no 'inputs'"),
        (b'{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1,2,3]}]}',
         400, "expected [-1, 8]"),
        (b'{"inputs": [{"name": "input", "shape": [1, 8], "datatype": "BYTES", "data": ["a"]}]}',
         400, "datatype 'BYTES'"),
        (b'{"inputs": [{"name": "input", "shape": [1, 8], "datatype": "FP32", "data": ["x"]}]}',
         400, "data[0] is a string"),
        (b'{"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", '
         b'"data": [1, 1e308]}]}',
         400, "value 1e+308 at position 1 is not a finite FP32"),
        (b'{"inputs": [{"name": "input", "shape": [1, 8], "datatype": "FP64", '
         b'"data": [1e300, 1, 1, 1, 1, 1, 1, 1]}]}',
         400, "input 'input': value 1e+300 at position 0 is not a finite FP32"),
        (b'{"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [1, null]}]}',
         400, "data[1] is null"),
        (b'{"inputs": [{"name": "input", "shape": [2, 1], "datatype": "FP32", '
         b'"data": [[1], [[2]]]}]}',
         400, "not a rectangular list of numbers"),
        (b'{"inputs": [{"name": "input", "shape": [1, 1], "datatype": "FP16", "data": [70000]}]}',
         400, "not a finite FP16"),
        (b'{"inputs": [{"name": "input", "shape": [1, 1], "datatype": "INT8", "data": [1.5]}]}',
         400, "INT8 data must be integers"),
        (b'{"inputs": [{"name": "input", "shape": [0, 8], "datatype": "FP32", "data": []}]}',
         400, "has no rows"),
        (b'{"inputs": [{"name": "input", "shape": [1, 8], "datatype": ["FP32"], "data": [1]}]}',
         400, "is not supported"),
        (b'{"inputs": [{"name": "input", "shape": [2, 8], "datatype": "FP32", "data": [1]}]}',
         400, "do not fill shape"),
        (b'{"inputs": [{"name": "wrong", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}',
         400, "unknown input 'wrong'"),
    ],
)  # fmt: skip
def test_bad_requests_get_oip_errors(
    server: tuple[str, Any], body: bytes, status: int, words: str
) -> None:
    url, _ = server
    reply = httpx.post(f"{url}/v2/models/fraud/infer", content=body)
    assert reply.status_code == status
    assert words in reply.json()["error"]


def test_unknown_model_version_and_oversized(server: tuple[str, Any], trained: Any) -> None:
    url, _ = server
    body = _oip(trained.X[:1])
    assert httpx.post(f"{url}/v2/models/nope/infer", json=body).status_code == 404
    missing = httpx.post(f"{url}/v2/models/fraud/versions/9/infer", json=body)
    assert missing.status_code == 404 and "no version '9'" in missing.json()["error"]
    pinned = httpx.post(f"{url}/v2/models/fraud/versions/1/infer", json=body)
    assert pinned.status_code == 200
    huge = httpx.post(f"{url}/v2/models/fraud/infer", json=_oip(np.zeros((10_000, N))))
    assert huge.status_code == 413 and "exceeds" in huge.json()["error"]


def test_thousand_malformed_requests_then_a_good_one(server: tuple[str, Any], trained: Any) -> None:
    url, _ = server
    negative = b'{"inputs": [{"name": "input", "shape": [-1, 8], "datatype": "FP32", "data": []}]}'
    bad = [b"", b"[", b"{}", b'{"inputs": 5}', b'{"inputs": [{"name": 1}]}', b"\xff\xfe", negative]

    async def hammer() -> list[int]:
        async with httpx.AsyncClient(base_url=url) as client:
            codes = []
            for start in range(0, 1000, 50):
                replies = await asyncio.gather(
                    *(
                        client.post("/v2/models/fraud/infer", content=bad[i % len(bad)])
                        for i in range(start, start + 50)
                    )
                )
                codes += [r.status_code for r in replies]
            return codes

    codes = asyncio.run(hammer())
    assert len(codes) == 1000 and set(codes) == {400}
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    good = httpx.post(f"{url}/v2/models/fraud/infer", json=_oip(trained.X[:1]))
    assert good.status_code == 200


def test_metrics_and_prediction_log(server: tuple[str, Any], trained: Any, tmp_path: Path) -> None:
    url, app = server
    for _ in range(3):
        httpx.post(f"{url}/v2/models/fraud/infer", json=_oip(trained.X[:2]))
    text = httpx.get(f"{url}/metrics").text
    assert 'ghaf_requests_total{model="fraud",version="1",code="200"} 3' in text
    assert 'ghaf_batch_rows_count{model="fraud",version="1"' in text
    assert "ghaf_queue_rows{" in text and "ghaf_request_seconds_bucket" in text

    def logged_rows() -> int:  # the log is written asynchronously, maybe in several files
        files = sorted((tmp_path / "log").glob("*.parquet"))
        return sum(pq.read_metadata(f).num_rows for f in files)

    deadline = time.monotonic() + 60  # generous: it returns as soon as the rows are there
    while logged_rows() < 3:
        assert time.monotonic() < deadline, "the prediction log was not written"
        time.sleep(0.05)
    table = pq.read_table(sorted((tmp_path / "log").glob("*.parquet")))
    assert table.num_rows == 3
    assert set(table.column_names) >= {"request_id", "model", "version", "features", "outputs"}
    sent = np.asarray(trained.X[:2], dtype=np.float32).astype(np.float64).tolist()
    assert all(rows == sent for rows in table.column("features").to_pylist())
    outputs = dict(table.column("outputs")[0].as_py())
    want = trained.model.predict_proba(trained.X[:2])
    np.testing.assert_allclose(np.array(outputs["probabilities"]), want, rtol=1e-5)
    assert app.prediction_log.dropped == 0


def _accepted_sockets(port: int) -> list[socket.socket]:
    """Copies of this process's TCP sockets accepted on ``port`` (the in-process server's)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # gone meanwhile, or not a socket
            if not str(fd.readlink()).startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(fd.name)))
            try:
                tcp = sock.family in (socket.AF_INET, socket.AF_INET6)  # not a unix socket
                if tcp and sock.type == socket.SOCK_STREAM and sock.getsockname()[1] == port:
                    sock.getpeername()  # accepted, not the listening socket
                    found.append(sock)
                    continue
            except OSError:
                pass
            sock.close()
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_tcp_nodelay_on_accepted_sockets(server: tuple[str, Any]) -> None:
    # With Nagle + delayed ACK each keep-alive request would wait ~40 ms: the server turns
    # Nagle off on every connection it accepts. Checked on the sockets, not with a clock.
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    with httpx.Client(base_url=url) as first, httpx.Client(base_url=url) as second:
        assert first.get("/v2/health/live").status_code == 200
        assert second.get("/v2/health/live").status_code == 200
        accepted = _accepted_sockets(port)
        try:
            assert len(accepted) >= 2
            for sock in accepted:
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            for sock in accepted:
                sock.close()


def test_not_ready_model_is_reported(platform: Platform, hgb_spec: ModelSpec) -> None:
    (hgb_spec.path / "model.skops").write_bytes(b"tampered")
    served = load_served(hgb_spec, platform=platform)
    app = ServingApp([Deployment.of(served)])
    with background_server(app) as url:
        ready = httpx.get(f"{url}/v2/models/fraud/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert ready.json()["error"]
        assert httpx.get(f"{url}/v2/health/ready").status_code == 503
        assert httpx.get(f"{url}/v2/health/live").status_code == 200
        body = {"inputs": [{"name": "input", "shape": [1, N], "datatype": "FP32", "data": [0] * N}]}
        infer = httpx.post(f"{url}/v2/models/fraud/infer", json=body)
        assert infer.status_code == 503 and "not ready" in infer.json()["error"]


def test_backpressure_returns_503_with_retry_after(
    platform: Platform, hgb_spec: ModelSpec, trained: Any
) -> None:
    served = load_served(hgb_spec, platform=platform, policy=BatchPolicy(max_queue_rows=4))
    app = ServingApp([Deployment.of(served)])
    body = _oip(trained.X[:4])

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url) as client:
            return await asyncio.gather(
                *(client.post("/v2/models/fraud/infer", json=body) for _ in range(40))
            )

    with background_server(app) as url:
        replies = asyncio.run(burst(url))
    codes = [r.status_code for r in replies]
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
    refused = next(r for r in replies if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and "overloaded" in refused.json()["error"]


def test_port_is_loopback_only(server: tuple[str, Any]) -> None:
    url, _ = server
    assert url.startswith("http://127.0.0.1:")
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) == 0
