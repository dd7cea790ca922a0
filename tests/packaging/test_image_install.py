"""The inference image's contents, tested without a container engine: its install script
(deploy/docker/install-inference.sh, the one the Dockerfile runs) fills a fresh venv offline
from the project venv's own packages, and that venv's ``ghaf serve`` answers an ONNX model.

The wheelhouse is repacked from the project's venv (deploy/docker/wheelhouse.py), so the
install downloads nothing: pip is given no index, and any connection it tried would go to
a dead proxy. It is kept under build/ keyed by the pins and the requirements, so a rerun
skips it; CI builds it once per run (about 10 s).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.unit.k8s.onnx_model import expected, tiny_onnx
from tests.unit.serving.server_processes import free_port

pytestmark = [
    pytest.mark.slow,
    # One worker builds the wheelhouse and the venv once for the module.
    pytest.mark.xdist_group("image-install"),
]

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
SCRIPT = DOCKER / "install-inference.sh"
ABSENT = (
    "torch",
    "ray",
    "scikit-learn",
    "lightgbm",
    "xgboost-cpu",
    "optuna",
    "fastapi",
    "opentelemetry-sdk",
    "deltalake",
    "pip",
)
"""Distributions the inference image must not hold (pip: it carries no installer)."""
PRESENT = ("ghaf", "onnxruntime", "onnx", "model-signing", "starlette", "uvicorn", "psycopg")
OFFLINE = {
    "PIP_NO_INDEX": "1",
    "PIP_CONFIG_FILE": os.devnull,  # no extra index or find-links from the machine's pip.conf
    "HTTP_PROXY": "http://127.0.0.1:9",  # a connection pip tried anyway would fail
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


def _run(command: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


def _requirements() -> list[str]:
    return _run(["sh", str(SCRIPT), "--print-requirements"]).split()


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    requirements = _requirements()
    key = hashlib.sha256()
    for part in (ROOT / "constraints.txt", ROOT / "pyproject.toml"):
        key.update(part.read_bytes())
    key.update(" ".join(requirements).encode())
    out = ROOT / "build" / f"wheelhouse-{key.hexdigest()[:12]}"
    if not out.exists():
        _run([sys.executable, str(DOCKER / "wheelhouse.py"), str(out), *requirements])
    return out


def _context(root: Path) -> Path:
    """What the image build sees (.dockerignore): the source, the pins, the scripts. A copy,
    so the build's in-tree files (build/lib, egg-info) never land in the working tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("src", "deploy"):
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    for name in ("pyproject.toml", "constraints.txt", "README.md", "LICENSE", "NOTICE"):
        shutil.copy2(ROOT / name, root / name)
    return root


@pytest.fixture(scope="module")
def venv(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``install-inference.sh VENV``, offline, as the image build runs it."""
    work = tmp_path_factory.mktemp("image")
    target = work / "opt-ghaf"
    env = {
        **os.environ,
        **OFFLINE,
        "PIP_FIND_LINKS": str(wheelhouse),
        "PYTHON": sys.executable,
        "GHAF_SRC": str(_context(work / "src")),
    }
    printed = _run(["sh", str(SCRIPT), str(target)], env=env)
    assert printed.strip().splitlines()[-1] == "0.1.0"  # the script ends with ghaf version
    return target


def _distributions(venv: Path) -> set[str]:
    code = "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'])"
    return {
        line.strip().lower() for line in _run([str(venv / "bin" / "python"), "-c", code]).split()
    }


def test_the_image_holds_onnx_serving_and_no_heavy_extra(venv: Path) -> None:
    installed = _distributions(venv)
    assert set(PRESENT) <= installed, set(PRESENT) - installed
    assert not installed & set(ABSENT), installed & set(ABSENT)


def test_the_script_refuses_an_image_with_a_forbidden_package(
    wheelhouse: Path, tmp_path: Path
) -> None:
    """The guard at the end of the script: a forbidden package fails the build."""
    script = tmp_path / "install-bad.sh"
    script.write_text(
        f'REQUIREMENTS="orjson"\nFORBIDDEN="orjson torch"\n. "{DOCKER}/install-common.sh"\n'
    )
    env = {
        **os.environ,
        **OFFLINE,
        "PIP_FIND_LINKS": str(wheelhouse),
        "PYTHON": sys.executable,
        "GHAF_SRC": str(_context(tmp_path / "src")),
    }
    done = subprocess.run(
        ["sh", str(script), str(tmp_path / "v")], capture_output=True, text=True, env=env
    )
    assert done.returncode != 0
    assert "the image must not contain: orjson" in done.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the control plane holds: ``tiny:1`` (ONNX) registered, signed and approved."""
    from ghaf.home import init_home
    from ghaf.models import save_model
    from ghaf.registry import approve_model_version, register_model
    from ghaf.settings import load_settings
    from tests.unit.serving.server_processes import second_person

    work = tmp_path_factory.mktemp("control-plane")
    with init_home(load_settings(home=work / "home")) as platform:
        save_model(tiny_onnx(), work / "model")
        version = register_model(platform, platform.admin(), "tiny", work / "model")
        approve_model_version(platform, second_person(platform), version.ref)
        return platform.settings.home


def _mapped(pid: int) -> set[str]:
    """The packages under site-packages with a file mapped into process ``pid``."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        _, marker, rest = line.partition("/site-packages/")
        if marker:
            found.add(rest.split("/", 1)[0].lstrip("_").split(".", 1)[0].split("_runtime")[0])
    return found


def _tree(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


@pytest.fixture(scope="module")
def serving(venv: Path, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The venv's own ``ghaf serve tiny:1`` on a loopback port, as the image's entrypoint."""
    work = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHAF_", "PYTHON"))}
    env.update(
        {
            "GHAF_HOME": str(home),
            "TMPDIR": str(work),
            "HOME": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    before = _tree(venv)
    log = work / "serve.log"
    command = [str(venv / "bin" / "ghaf"), "serve", "tiny:1", "--port", str(port), "--insecure-dev"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # bounded: about two minutes
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            try:  # the pause between tries is a wait on the process itself
                process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"ghaf serve exited: {log.read_text(errors='replace')}")
        else:
            raise AssertionError(f"never ready: {log.read_text(errors='replace')}")
        yield url
        engines = _mapped(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    assert "Traceback" not in log.read_text(errors="replace")
    # DuckDB, Polars, pandas and SciPy are core dependencies, so the image holds them, but
    # the model server never loads them.
    assert not engines & {"duckdb", "polars", "pandas", "scipy", "torch", "sklearn"}, engines
    # Read-only root filesystem friendly: serving wrote nothing into the installed tree
    # (the image's writable paths are the home and /tmp only).
    assert _tree(venv) == before


def test_the_installed_ghaf_serves_an_onnx_model(serving: str) -> None:
    rows = np.array([[0.0, 0.0], [1.0, 3.0], [-2.0, 0.5]], dtype=np.float32)
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    answer = httpx.post(f"{serving}/v2/models/tiny/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    np.testing.assert_allclose(
        output["data"], expected(rows), rtol=1e-5
    )  # float32 arithmetic in ONNX Runtime
    assert httpx.get(f"{serving}/v2/health/live", timeout=5).status_code == 200
