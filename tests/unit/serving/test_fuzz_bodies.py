"""Fuzzed request bodies against ``ghaf serve`` and ``ghaf features serve`` (real processes).

Whatever the body (any JSON, malformed JSON, tensors of every datatype with odd shapes,
nulls, huge numbers, nesting), the answer is never a 5xx and never a traceback, and
the server is healthy and correct afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.features.materialize import materialize
from ghaf.features.registry import apply_definitions
from ghaf.platform import Platform
from ghaf.testing.online_store import make_source, sample_definitions
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess, bearer, register_champion

pytestmark = pytest.mark.slow

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DATATYPES = ["BOOL", "UINT8", "INT32", "INT64", "UINT64", "FP16", "FP32", "FP64", "BYTES", "x"]
COLUMNS = [f"f{i}" for i in range(8)]

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # valid UTF-8
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 3.5e38, 65505.0, 2**63, 2**64, -(2**63) - 1])
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(text, inner, max_size=4),
    max_leaves=30,
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` four times in five, else ``bad`` (a plain ``|`` weighs every branch alike)."""
    return st.integers(0, 4).flatmap(lambda pick: bad if pick == 0 else good)


finite = st.floats(-1e6, 1e6, allow_nan=False)
numbers = mostly(finite, st.integers(-(2**64), 2**64) | st.sampled_from([1e308, 7e4, -3.5e38]))
odd = scalars | json_values
"""Mostly ordinary numbers, sometimes anything at all."""


@st.composite
def tensors(draw: st.DrawFn) -> dict[str, Any]:
    """A tensor that is nearly right (the model's name, 8 columns), then bent somewhere."""
    rows = draw(st.integers(0, 3))
    flat = draw(st.lists(numbers, min_size=rows * 8, max_size=rows * 8))
    data: Any = flat
    if draw(st.booleans()):
        data = [flat[i : i + 8] for i in range(0, len(flat), 8)]  # nested rows
    tensor: dict[str, Any] = {
        "name": draw(mostly(st.just("input"), st.just("f0") | json_values)),
        "shape": draw(mostly(st.just([rows, 8]), st.sampled_from([[rows * 8], [8, rows]]) | odd)),
        "datatype": draw(mostly(st.sampled_from(DATATYPES[:8]), st.sampled_from(DATATYPES) | odd)),
        "data": data,
    }
    mutation = draw(st.integers(0, 4))
    if mutation == 0 and flat:
        where = draw(st.integers(0, len(flat) - 1))
        flat[where] = draw(odd)  # one bad value among good ones
    elif mutation == 1:
        tensor[draw(st.sampled_from(sorted(tensor)))] = draw(odd)
    elif mutation == 2:
        del tensor[draw(st.sampled_from(sorted(tensor)))]
    if draw(st.integers(0, 4)) == 0:
        tensor["parameters"] = draw(st.fixed_dictionaries({"binary_data_size": odd}) | odd)
    return tensor


oip_bodies = st.fixed_dictionaries(
    {"inputs": mostly(st.lists(tensors(), min_size=1, max_size=2), odd)},
    optional={
        "id": odd,
        "parameters": st.fixed_dictionaries({}, optional={"binary_data_output": odd}) | odd,
        "outputs": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["probabilities", "label"]) | odd},
                optional={"parameters": odd},
            ),
            max_size=2,
        )
        | odd,
    },
)
record = st.fixed_dictionaries(
    dict.fromkeys(COLUMNS, mostly(numbers, odd)),
    optional={"model": odd, "x": odd},
)
records = st.lists(record, min_size=1, max_size=4) | st.lists(
    st.dictionaries(text, odd), max_size=2
)
record_bodies = records | st.fixed_dictionaries(
    {"records": records | odd}, optional={"model": st.just("fraud") | odd, "routing_key": odd}
)
REFS = ["customer_stats:spend", "customer_stats", "customer_stats:nope", "nope:x", "a:b:c", ""]
ids = mostly(st.integers(0, 60), st.integers(-(2**65), 2**65) | text | odd)
entity_columns = mostly(
    st.fixed_dictionaries(
        {"customer_id": mostly(st.lists(ids, max_size=6), odd)},
        optional={"x": mostly(st.lists(ids), odd)},
    ),
    st.dictionaries(text, odd, max_size=2),
)
feature_bodies = st.fixed_dictionaries(
    {"entities": entity_columns},
    optional={
        "features": mostly(st.lists(mostly(st.sampled_from(REFS), odd), max_size=3), odd),
        "feature_service": mostly(st.sampled_from(["fraud_v1", "nope"]), odd),
        "full_feature_names": mostly(st.booleans(), odd),
    },
)


def _encode(body: Any) -> bytes:
    return json.dumps(body).encode()  # stdlib: integers past 64 bits survive the trip


def _check(reply: httpx.Response) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text)
    assert "Traceback" not in reply.text
    if reply.status_code >= 400:
        assert isinstance(reply.json()["error"], str)


def test_model_server_never_answers_5xx(platform: Platform, trained: Any, tmp_path: Path) -> None:
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    token = mint(platform, "svc-scorer", ["model_server"], kind="service")
    server = ServerProcess(
        platform.settings.home, ("serve", "fraud@champion"), "/v2/health/ready",
        tmp_path / "serve.log",
    ).start()  # fmt: skip
    rows = trained.X[:4]
    valid = {"inputs": [{"name": "input", "shape": [4, 8], "datatype": "FP32",
                         "data": rows.ravel().tolist()}]}  # fmt: skip
    try:
        with httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as client:

            @EXAMPLES
            @given(
                path=st.sampled_from(["/v2/models/fraud/infer", "/predict", "/predict/fraud"]),
                body=mostly(oip_bodies | record_bodies, json_values | st.binary(max_size=64)),
            )
            def fuzz(path: str, body: Any) -> None:
                content = body if isinstance(body, bytes) else _encode(body)
                _check(client.post(path, content=content))

            fuzz()
            assert client.get("/v2/health/ready").status_code == 200
            reply = client.post("/v2/models/fraud/infer", json=valid)
            assert reply.status_code == 200, reply.text
            got = np.reshape(reply.json()["outputs"][0]["data"], (4, 2))
            np.testing.assert_allclose(got, trained.model.predict_proba(rows), rtol=1e-6)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def test_feature_server_never_answers_5xx(platform: Platform, tmp_path: Path) -> None:
    source = make_source(tmp_path / "s.parquet")
    apply_definitions(platform, platform.admin(), sample_definitions(source, ttl_days=10_000))
    materialize(platform, platform.admin())
    token = mint(platform, "alice", ["viewer"])
    server = ServerProcess(
        platform.settings.home, ("features", "serve"), "/health", tmp_path / "features.log"
    ).start()
    valid = {"entities": {"customer_id": [1, 2]}, "features": ["customer_stats:spend"]}
    try:
        with httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as client:

            @EXAMPLES
            @given(body=mostly(feature_bodies, json_values | st.binary(max_size=64)))
            def fuzz(body: Any) -> None:
                content = body if isinstance(body, bytes) else _encode(body)
                _check(client.post("/get-online-features", content=content))

            fuzz()
            assert client.get("/health").status_code == 200
            reply = client.post("/get-online-features", json=valid)
            assert reply.status_code == 200 and len(reply.json()["features"]["spend"]) == 2
    finally:
        log = server.stop()
    assert "Traceback" not in log
