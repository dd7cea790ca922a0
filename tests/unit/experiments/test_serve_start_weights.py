"""A ``ghaf serve`` that starts on a deployment record serves what the record says from its
first request: the weights set live (a canary's share) and a running experiment's
assignment, rather than resetting them to equal weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ghaf.experiments.service import create_experiment, start_experiment
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.deployments import create_deployment, get_deployment
from ghaf.serving.traffic import Assignment
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess, bearer, second_person

pytestmark = pytest.mark.slow


def _onnx(weight: float) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [3], [weight] * 3)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def _body() -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                        "data": [1.0, 2.0, 3.0]}]}  # fmt: skip


def test_a_starting_server_serves_the_record_s_weights_and_experiment(
    platform: Platform, tmp_path: Path
) -> None:
    admin, ben = platform.admin(), second_person(platform)
    for i in (1, 2):
        save_model(_onnx(float(i)), tmp_path / f"m{i}")
        approve_model_version(
            platform, ben, register_model(platform, admin, "fraud", tmp_path / f"m{i}").ref
        )
    create_deployment(platform, admin, "fraud", {"fraud:1": 0.0, "fraud:2": 100.0})
    made = create_experiment(platform, admin, "ab", "fraud", {"fraud:1": 1.0, "fraud:2": 1.0})
    start_experiment(platform, admin, "ab")
    token = mint(platform, "svc", ["model_server"], kind="service")
    server = ServerProcess(
        platform.settings.home, ("serve", "fraud:1", "fraud:2"), "/v2/health/ready",
        tmp_path / "serve.log",
    ).start(timeout=300)  # fmt: skip
    try:
        record = get_deployment(platform, "fraud")
        assert record.models == {"fraud:1": 0.0, "fraud:2": 100.0}  # not reset by the start
        assert record.routing is not None and record.routing["experiment"] == "ab"
        assignment = Assignment("ab", made.salt, {"1": 1.0, "2": 1.0}, control="1")
        with httpx.Client(base_url=server.url, headers=bearer(token)) as client:
            first = client.post("/v2/models/fraud/infer", json=_body())
            assert first.status_code == 200, first.text
            assert int(first.headers["x-ghaf-revision"]) == record.revision
            versions = {client.post("/v2/models/fraud/infer", json=_body()).json()["model_version"]
                        for _ in range(20)}  # fmt: skip
            assert first.json()["model_version"] == "2" and versions == {"2"}
            for unit in (f"customer-{i}" for i in range(30)):
                reply = client.post(
                    "/v2/models/fraud/infer", json=_body(), headers={"x-ghaf-unit": unit}
                )
                assert reply.json()["model_version"] == assignment.assign(unit)[1], unit
    finally:
        output = server.stop()
    assert "Traceback" not in output
