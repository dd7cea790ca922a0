"""Custom model code: off by default, inside the signed model, allowed per project by an
approver (audited), imports guarded, and labelled on the card and the gate."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

import ghaf
from ghaf.cli.exit_codes import exit_code_for
from ghaf.cli.main import app
from ghaf.errors import GhafError, InvalidInputError, PolicyViolationError
from ghaf.models import load_model_dir, save_model
from ghaf.models.custom_code import CodePolicy
from ghaf.platform import Platform
from ghaf.registry import get_model_version, list_models, register_model
from ghaf.registry.code_policy import change_code_policy
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint

CODE = Path(__file__).parents[1] / "models" / "model_code"
PAYLOAD = {"w": np.array([1.0, 2.0, -1.0, 0.5]), "b": 0.25}
X4 = np.random.default_rng(3).normal(size=(20, 4))
GATE = "name: ci\nrequire:\n  signature: true\n  clean_scan: true\n"


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    exc = result.exception
    if isinstance(exc, GhafError):
        return exit_code_for(exc), " ".join((result.output + exc.headline).split())
    return result.exit_code, " ".join(result.output.split())


def _audit(platform: Platform, action: str) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow).where(AuditRecordRow.action == action)
        ).scalars()
        return list(rows)


def test_custom_code_is_off_until_an_approver_allows_its_imports(
    platform: Platform, tmp_path: Path
) -> None:
    model = tmp_path / "linear"
    save_model(PAYLOAD, model, flavor="pyfunc", code=CODE / "linear.py")
    code, out = _cli("models", "register", "lin", str(model))
    assert code == 7, out
    assert "code/linear.py is custom code, and custom code is off for project default" in out
    assert list_models(platform) == []

    code, out = _cli("policy", "code", "allow", "os")
    assert code == 3 and "module os can never be allowed for model code" in out, out
    scientist = mint(platform, "sam", ["data_scientist"])
    code, out = _cli("--token", scientist, "policy", "code", "allow", "numpy")
    assert code == 6, out
    ben = mint(platform, "ben", ["model_approver"])
    code, out = _cli(
        "--token", ben, "policy", "code", "allow", "numpy", "math", "--reason", "reviewed"
    )
    assert code == 0 and "may import math, numpy" in out, out
    code, out = _cli("policy", "code", "show", "--output", "json")
    shown = json.loads(out)
    assert shown["modules"] == ["math", "numpy"] and shown["set_by"] == "ben"
    assert "subprocess" in shown["never_allowed"]
    outcomes = [(r.actor, r.outcome) for r in _audit(platform, "code_policy.set")]
    assert ("sam", "denied") in outcomes and ("ben", "allowed") in outcomes
    allowed = next(r for r in _audit(platform, "code_policy.set") if r.outcome == "allowed")
    details = json.loads(allowed.details)
    assert details["before"] == [] and details["modules"] == ["math", "numpy"]
    assert details["reason"] == "reviewed"

    code, out = _cli("models", "register", "lin", str(model))
    assert code == 0, out
    card = get_model_version(platform, "lin:1").card
    assert "**runs custom code** (`code/linear.py`" in card
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    code, out = _cli("gate", "check", "lin:1", "--policy", str(gate), "--output", "json")
    assert code == 0, out
    report = json.loads(out)
    assert "runs custom code: code/linear.py (imports numpy)" in report["notes"]
    loaded = ghaf.load_model("lin:1", platform)
    np.testing.assert_allclose(loaded.predict(X4), X4 @ PAYLOAD["w"] + PAYLOAD["b"])

    code, out = _cli("--token", ben, "policy", "code", "revoke", "numpy")
    assert code == 0, out
    with pytest.raises(
        PolicyViolationError, match=r"code/linear\.py imports numpy, which the code"
    ):
        ghaf.load_model("lin:1", platform)
    code, out = _cli("gate", "check", "lin:1", "--policy", str(gate), "--output", "json")
    assert code == 7 and "imports numpy, which the code policy of project default" in out


EVIL_CODE: dict[str, tuple[str, str]] = {
    "imports subprocess": (
        "import subprocess\nsubprocess.run(['touch', SENTINEL])\n",
        "code/evil.py imports subprocess, which model code may never import",
    ),
    "__import__ os": (
        "__import__('os').system('touch ' + SENTINEL)\n",
        "code/evil.py line 3: __import__ is not available to model code",
    ),
    "introspection": (
        "[c for c in ().__class__.__base__.__subclasses__()]\n",
        "code/evil.py line 3: attribute __subclasses__ is refused",
    ),
    "open": ("open(SENTINEL, 'w').close()\n", "code/evil.py line 3: open is not available"),
    "relative import": (
        "from . import helpers\n",
        "code/evil.py line 3: relative imports are refused",
    ),
    "importlib": (
        "import importlib\nimportlib.import_module('os').system('touch ' + SENTINEL)\n",
        "code/evil.py imports importlib, which model code may never import",
    ),
}


def _evil_model(directory: Path, body: str, sentinel: Path) -> None:
    (directory / "code").mkdir(parents=True)
    source = f"import numpy\nSENTINEL = {str(sentinel)!r}\n{body}\ndef build(payload):\n"
    source += "    return payload\n"
    (directory / "code" / "evil.py").write_text(source)
    save_model(PAYLOAD, directory / "probe", flavor="pyfunc", code=CODE / "linear.py")
    (directory / "payload.pkl").write_bytes((directory / "probe" / "payload.pkl").read_bytes())
    for path in sorted((directory / "probe").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (directory / "probe").rmdir()
    body_json = {"flavor": "pyfunc", "files": ["payload.pkl", "code/evil.py"]}
    body_json["options"] = {"code": "code/evil.py"}  # type: ignore[assignment]
    (directory / "ghaf-model.json").write_text(json.dumps(body_json))


@pytest.mark.parametrize("case", sorted(EVIL_CODE))
def test_model_code_that_reaches_for_the_process_never_runs(
    platform: Platform, tmp_path: Path, case: str
) -> None:
    body, expected = EVIL_CODE[case]
    sentinel = tmp_path / "pwned"
    _evil_model(tmp_path / "evil", body, sentinel)
    allow = CodePolicy("default", ("numpy",))
    with pytest.raises(PolicyViolationError) as refused:
        load_model_dir(tmp_path / "evil", code_policy=allow)
    assert expected in refused.value.headline
    change_code_policy(platform, platform.admin(), "default", allow=["numpy"])
    with pytest.raises(PolicyViolationError, match=r"code/evil\.py"):
        register_model(platform, platform.admin(), "evil", tmp_path / "evil")
    assert not sentinel.exists()
    with pytest.raises(InvalidInputError, match=r"code/evil\.py"):
        save_model(
            PAYLOAD, tmp_path / "resaved", flavor="pyfunc", code=tmp_path / "evil/code/evil.py"
        )


def test_the_import_guard_stays_with_the_code_after_it_loaded(tmp_path: Path) -> None:
    save_model(PAYLOAD, tmp_path / "m", flavor="pyfunc", code=CODE / "linear.py")
    loaded = load_model_dir(tmp_path / "m", code_policy=CodePolicy("default", ("numpy",)))
    guarded: Any = type(loaded.raw).predict.__globals__["__builtins__"]
    assert guarded["__import__"]("numpy") is np
    with pytest.raises(PolicyViolationError, match="imports subprocess, which the code policy"):
        guarded["__import__"]("subprocess")
    assert "open" not in guarded and "eval" not in guarded and "getattr" not in guarded
    with pytest.raises(PolicyViolationError, match="custom code is off"):
        load_model_dir(tmp_path / "m")


def _residual(width: int = 4) -> Any:
    spec = importlib.util.spec_from_file_location("residual_net", CODE / "net.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(width)


def test_pytorch_architectures_are_data_or_allowed_code(tmp_path: Path) -> None:
    import torch

    net = _residual()
    with pytest.raises(InvalidInputError, match="a Residual cannot be saved as data"):
        save_model(net, tmp_path / "nocode", flavor="pytorch")
    save_model(
        net, tmp_path / "m", flavor="pytorch", code=CODE / "net.py", build_kwargs={"width": 4}
    )
    with pytest.raises(PolicyViolationError, match=r"code/net\.py is custom code"):
        load_model_dir(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", code_policy=CodePolicy("default", ("torch",)))
    data = X4.astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(data)).numpy()
    np.testing.assert_allclose(loaded.predict(data), expected, rtol=1e-5)

    seq = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    save_model(seq, tmp_path / "seq", flavor="pytorch")
    meta = json.loads((tmp_path / "seq" / "ghaf-model.json").read_text())
    assert meta["options"]["architecture"][1] == {"layer": "Tanh"} and "code" not in meta["options"]
    meta["options"]["architecture"][1] = {"layer": "Module"}
    (tmp_path / "seq" / "ghaf-model.json").write_text(json.dumps(meta))
    with pytest.raises(PolicyViolationError, match="architecture layer 1: 'Module' is not one"):
        load_model_dir(tmp_path / "seq")


def test_mlflow_pytorch_import_takes_the_architecture_as_data(
    platform: Platform, tmp_path: Path
) -> None:
    import torch

    from ghaf.models.flavors.pytorch import architecture_of

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    mlflow_dir = tmp_path / "mlflow"
    (mlflow_dir / "data").mkdir(parents=True)
    (mlflow_dir / "MLmodel").write_text(yaml.safe_dump({"flavors": {"pytorch": {}}}))
    torch.save(net.state_dict(), mlflow_dir / "data" / "model.pth")
    architecture = tmp_path / "arch.json"
    architecture.write_text(json.dumps(architecture_of(net)))

    code, out = _cli(
        "models", "import-mlflow", str(mlflow_dir), "--name", "t", "--entry-point", "os:system"
    )
    assert code == 3 and "--entry-point is no longer accepted" in out, out
    code, out = _cli(
        "models", "import-mlflow", str(mlflow_dir), "--name", "t", "--code", str(CODE / "net.py")
    )
    assert code == 7 and "code/net.py is custom code" in out, out
    code, out = _cli(
        "models", "import-mlflow", str(mlflow_dir), "--name", "t", "--architecture",
        str(architecture),
    )  # fmt: skip
    assert code == 0, out
    data = X4.astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(data)).numpy()
    np.testing.assert_allclose(ghaf.load_model("t:1", platform).predict(data), expected, rtol=1e-5)
