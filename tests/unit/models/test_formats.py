"""Model file formats are recognised by their content; a file's name never decides."""

from __future__ import annotations

import json
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.errors import PolicyViolationError
from ghaf.models.formats import FORMATS, check_format, flavor_of_file, identify

X = np.random.default_rng(5).normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)
NAMES = {
    "skops": "model.skops",
    "onnx": "model.onnx",
    "lightgbm": "model.lgb.txt",
    "xgboost": "model.ubj",
    "safetensors": "model.safetensors",
}


def _skops(path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    sio.dump(LogisticRegression().fit(X, Y), path)


def _onnx(path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X.astype(np.float32), Y)
    path.write_bytes(to_onnx(model, X[:1].astype(np.float32)).SerializeToString())


def _lightgbm(path: Path) -> None:
    import lightgbm

    booster = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, Y), 3)
    booster.save_model(str(path))


def _xgboost(path: Path) -> None:
    import xgboost

    xgboost.XGBClassifier(n_estimators=2, max_depth=2).fit(X, Y).save_model(str(path))


def _safetensors(path: Path) -> None:
    import safetensors.numpy

    safetensors.numpy.save_file({"w": np.ones((2, 3), dtype=np.float32)}, str(path))


WRITERS = {
    "skops": _skops,
    "onnx": _onnx,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "safetensors": _safetensors,
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_real_files_of_each_format_are_recognised(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / NAMES[fmt]
    WRITERS[fmt](path)
    check_format(path, fmt)
    assert identify(path) == FORMATS[fmt]


def test_xgboost_json_is_recognised_and_a_format_registers_whatever_its_name(
    tmp_path: Path,
) -> None:
    _xgboost(tmp_path / "model.json")
    check_format(tmp_path / "model.json", "xgboost")
    _onnx(tmp_path / "exported.bin")
    assert flavor_of_file(tmp_path / "exported.bin") == "onnx"
    _lightgbm(tmp_path / "model.lgb.txt")
    assert flavor_of_file(tmp_path / "model.lgb.txt") == "lightgbm"


class _Call:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("true",))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("fmt", sorted(NAMES))
def test_a_pickle_is_refused_whatever_its_name_says(
    tmp_path: Path, fmt: str, protocol: int
) -> None:
    path = tmp_path / NAMES[fmt]
    path.write_bytes(pickle.dumps(_Call(), protocol=protocol))
    expected = f"{path.name} is a pickle (protocol {protocol}): loading it runs code, not "
    with pytest.raises(PolicyViolationError, match=re.escape(expected)):
        check_format(path, fmt)
    with pytest.raises(PolicyViolationError, match="is a pickle"):
        flavor_of_file(path)


def test_a_torch_pickle_archive_is_not_safetensors(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(PolicyViolationError, match="is a PyTorch pickle archive"):
        check_format(path, "safetensors")


def test_another_real_format_under_a_claimed_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    _lightgbm(path)
    with pytest.raises(PolicyViolationError, match="is a LightGBM text model, not an ONNX"):
        flavor_of_file(path)


def test_structure_is_checked_not_just_magic_bytes(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "model.skops"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data.bin", b"nothing")
    with pytest.raises(PolicyViolationError, match=r"has no schema\.json"):
        check_format(archive, "skops")
    tensors = tmp_path / "model.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4096]}}).encode()
    tensors.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(PolicyViolationError, match="tensor 'w' points outside the file"):
        check_format(tensors, "safetensors")


def test_onnx_external_data_may_not_leave_the_directory(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../etc/passwd")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [tensor],
    )
    path = tmp_path / "model.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    assert onnx.load(str(path), load_external_data=False).graph.initializer
    with pytest.raises(
        PolicyViolationError, match=re.escape("reads external data from '../../etc/passwd'")
    ):
        check_format(path, "onnx")


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=200), protocol=st.integers(min_value=2, max_value=5))
def test_anything_that_starts_like_a_pickle_is_never_a_model_format(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, protocol: int
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "model.skops"
    path.write_bytes(bytes([0x80, protocol]) + body)
    for fmt in NAMES:
        with pytest.raises(PolicyViolationError, match="is a pickle"):
            check_format(path, fmt)


def test_a_real_torch_export_archive_holds_no_code(tmp_path: Path) -> None:
    import torch

    from ghaf.models.formats import torch_archive_problems
    from ghaf.serving.runtimes.torch import save_torch

    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    path = save_torch(module, 3, tmp_path / "model.pt2")
    assert identify(path) == "a torch.export archive (.pt2)"
    assert torch_archive_problems(path) == []
