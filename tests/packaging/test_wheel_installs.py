"""The wheel, built from the sdist, installed as a user installs it: core only, then each extra.

Every venv is created here without ``--system-site-packages`` (it would hide a missing
dependency) and filled by pip from the package metadata alone, with constraints.txt so
the versions are those CI pins. The core venv is made once; each extra's venv starts as
a hard-linked copy of it (what a fresh core install holds, at no second download or
unpack; pip replaces files by unlink and write, so the copy never writes through to the
core venv) and then installs its extra, so no extra sees another's packages.

``torch`` and ``ray`` are not installed here: on CI's two cores their installs alone take
three to four minutes, past this module's budget. They are covered by pip resolving
``ghaf[all]`` against the pins, and by the core venv naming each of them when a command
needs it (a Ray executor, a PyTorch model). Installed by hand, each ran its smoke command
(a PyTorch round trip through the flavor; a pipeline on a local Ray cluster).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from tests.unit.serving.server_processes import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.service,
    # One worker builds the wheel and the core venv once for the whole module.
    pytest.mark.xdist_group("packaging"),
]

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
OLDER = {"numpy": "2.2.6", "pandas": "2.3.3"}
"""Older releases inside the declared ranges, for the existing-environment test."""

EXTRA_DISTRIBUTIONS = (
    "fastapi",
    "starlette",
    "uvicorn",
    "scikit-learn",
    "torch",
    "ray",
    "psycopg",
    "s3fs",
    "boto3",
    "redis",
    "nats-py",
    "deltalake",
    "jinja2",
)
"""Distributions only extras bring: none may be in a core install."""


def _run(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


@dataclass(frozen=True)
class Venv:
    """A virtual environment under test; pip runs from the test's own interpreter."""

    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @classmethod
    def create(cls, path: Path) -> Venv:
        _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
        return cls(path)

    def copy(self, path: Path) -> Venv:
        """A hard-linked copy (its console scripts still name this venv's Python)."""
        _run(["cp", "-al", str(self.path), str(path)])
        return Venv(path)

    def pip(self, *args: str, constraints: Path = CONSTRAINTS) -> str:
        command = [sys.executable, "-m", "pip", "--python", self.python, *args]
        if args[0] == "install":
            command += ["-q", "-c", str(constraints)]
        return _run(command)

    def versions(self) -> dict[str, str]:
        listed = json.loads(self.pip("list", "--format", "json"))
        return {item["name"].lower(): item["version"] for item in listed}

    def ghaf(
        self, home: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``python -m ghaf ARGS`` with ``home`` as GHAF_HOME (the outcome, not checked)."""
        return subprocess.run(
            [self.python, "-m", "ghaf", *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "GHAF_HOME": str(home), **(env or {})},
        )

    def ok(self, home: Path, *args: str, env: dict[str, str] | None = None) -> str:
        done = self.ghaf(home, *args, env=env)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build``: the sdist, then the wheel built from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    (wheel,) = out.glob("ghaf-*.whl")
    (sdist,) = out.glob("ghaf-*.tar.gz")
    return Dist(wheel, sdist)


@pytest.fixture(scope="module")
def core(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    venv = Venv.create(tmp_path_factory.mktemp("venvs") / "core")
    venv.pip("install", str(dist.wheel))
    return venv


def with_extra(base: Venv, dist: Dist, path: Path, extra: str) -> Venv:
    venv = base.copy(path)
    venv.pip("install", f"{dist.wheel}[{extra}]")
    return venv


EXTRAS = ("ml", "server", "data", "s3", "postgres", "nats", "redis", "ui")
"""Installed into copies of the core venv; serve goes into a copy of ml's (a model needs
a flavor to be served)."""


@pytest.fixture(scope="module", autouse=True)
def venvs(
    core: Venv, dist: Dist, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Venv]]]:
    """Each extra's venv, installed three at a time from the module's start on, while the
    core tests run.

    pip waits on the network and the disk more than on a core, so a few installs at
    once finish well before the same installs one after another.
    """
    root = tmp_path_factory.mktemp("venvs")
    with ThreadPoolExecutor(max_workers=3) as pool:
        made = {name: pool.submit(with_extra, core, dist, root / name, name) for name in EXTRAS}
        made["serve"] = pool.submit(  # ml is submitted first, so it runs while this waits
            lambda: with_extra(made["ml"].result(), dist, root / "serve", "serve")
        )
        yield made
        for future in made.values():
            future.cancel()


@contextmanager
def running(command: list[str], health: str, log: Path, env: dict[str, str]) -> Iterator[None]:
    """Run a server until the block ends; it must answer ``health`` with 200 first."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(600):  # bounded: about two minutes
            try:
                if httpx.get(health, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            try:  # the pause between tries is a wait on the process itself
                process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"the server exited: {log.read_text(errors='replace')}")
        else:
            raise AssertionError(f"never healthy: {log.read_text(errors='replace')}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    assert "Traceback" not in log.read_text(errors="replace")


def test_the_wheel_and_sdist_carry_the_licence_ranges_and_extras(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert {f"{info}/licenses/LICENSE", f"{info}/licenses/NOTICE"} <= names
    # Package data the migrations and the policy engine read at run time.
    assert "ghaf/metadata/migrations/script.py.mako" in names
    assert "ghaf/security/policy.yaml" in names
    assert "License-Expression: Apache-2.0" in metadata
    requires = [
        Requirement(line.removeprefix("Requires-Dist: "))
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    pinned = [str(r) for r in requires if any(s.operator == "==" for s in r.specifier)]
    assert requires and not pinned, pinned  # ranges, so Ghaf installs beside other packages
    extras = {line.split(": ")[1] for line in metadata.splitlines() if "Provides-Extra" in line}
    doors = {"server", "serve", "ml", "torch", "ray", "postgres", "s3", "redis", "nats", "ui"}
    assert doors | {"all"} <= extras
    with tarfile.open(dist.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        assert {f"{top}/LICENSE", f"{top}/NOTICE", f"{top}/pyproject.toml"} <= set(sdist.getnames())


NUMBERS = "ghaf.pipelines.examples:numbers"
TORCH_MISSING = """
import sys
from pathlib import Path

from ghaf.errors import MissingDependencyError
from ghaf.models import save_model

try:
    save_model(object(), Path(sys.argv[1]), flavor="pytorch")
except MissingDependencyError as exc:
    print(exc.extra)
"""

SKLEARN_MISSING = """
import numpy as np

from ghaf.errors import MissingDependencyError
from ghaf.evaluation.metrics import classification_metrics

try:  # scikit-learn is imported inside the function: the SDK still names the extra
    classification_metrics(np.array([0, 1]), np.array([0.2, 0.8]))
except MissingDependencyError as exc:
    print(exc.extra)
"""


def test_a_core_install_runs_help_init_doctor_and_names_missing_extras(
    core: Venv, tmp_path: Path
) -> None:
    installed = core.versions()
    assert not [name for name in EXTRA_DISTRIBUTIONS if name in installed], installed
    home = tmp_path / "home"
    env = {**os.environ, "GHAF_HOME": str(home)}
    # The console script, as a user types it.
    assert "Create the platform home" in _run([str(core.path / "bin" / "ghaf"), "--help"], env=env)
    assert "initialized Ghaf home" in _run([str(core.path / "bin" / "ghaf"), "init"], env=env)
    doctor = _run([str(core.path / "bin" / "ghaf"), "doctor"], env=env)
    assert "migrated" in doctor and "FAIL" not in doctor
    assert "audit trail valid" in core.ok(home, "audit", "verify")
    # A credential is checked without Starlette: refused, not an ImportError.
    refused = core.ghaf(home, "--token", "ghaf_0000_notatoken", "whoami")
    assert refused.returncode == 6, refused.stderr
    assert "malformed" in refused.stderr
    # A door whose extra is missing says which extra to install, in one line.
    server = core.ghaf(home, "server")
    assert server.returncode == 10, server.stderr
    assert "pip install 'ghaf[server]'" in server.stderr
    assert "Traceback" not in server.stderr
    on_ray = core.ghaf(home, "pipelines", "run", NUMBERS, env={"GHAF_EXECUTOR": "ray"})
    assert on_ray.returncode == 10, on_ray.stderr
    assert "pip install 'ghaf[ray]'" in on_ray.stderr
    # The SDK raises the same error, naming the extra.
    assert _run([core.python, "-c", TORCH_MISSING, str(tmp_path / "m")]).strip() == "torch"
    assert _run([core.python, "-c", SKLEARN_MISSING]).strip() == "ml"


def test_older_numpy_and_pandas_in_the_ranges_are_kept(
    core: Venv, dist: Dist, tmp_path: Path
) -> None:
    """An environment that already holds other numpy/pandas releases takes Ghaf as it is."""
    unpinned = tmp_path / "constraints.txt"
    unpinned.write_text(
        "".join(
            line
            for line in CONSTRAINTS.read_text().splitlines(keepends=True)
            if line.split("==")[0] not in OLDER
        )
    )
    venv = core.copy(tmp_path / "older")
    venv.pip("uninstall", "-y", "-q", "ghaf")
    venv.pip("install", *(f"{n}=={v}" for n, v in OLDER.items()), constraints=unpinned)
    venv.pip("install", str(dist.wheel), constraints=unpinned)
    installed = venv.versions()
    assert {name: installed[name] for name in OLDER} == OLDER
    home = tmp_path / "home"
    venv.ok(home, "init")
    assert "FAIL" not in venv.ok(home, "doctor")
    table = tmp_path / "t.csv"
    table.write_text("id,amount\n" + "".join(f"{i},{i * 1.5}\n" for i in range(200)))
    venv.ok(home, "data", "ingest", str(table), "--name", "t")
    shown = json.loads(venv.ok(home, "data", "show", "t", "--output", "json"))
    assert shown["rows"] == 200


@pytest.fixture(scope="module")
def ml(venvs: dict[str, Future[Venv]]) -> Venv:
    return venvs["ml"].result()


TRAIN = """
import sys
from pathlib import Path

from sklearn.linear_model import LogisticRegression

from ghaf.models import save_model

model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
print(save_model(model, Path(sys.argv[1])))
"""


def mint(venv: Venv, home: Path, *args: str, token: str | None = None) -> str:
    """``ghaf tokens create ARGS``: the token it prints last."""
    auth = ("--token", token) if token else ()
    return venv.ok(home, *auth, "tokens", "create", *args).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def approved(ml: Venv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with ``tiny:1``: trained, registered (signed) and approved by a second person.

    The approver's token is minted by a project admin, not by the author, as the
    release policy requires; all of it through the CLI, as a team would.
    """
    work = tmp_path_factory.mktemp("approved")
    home, saved = work / "home", work / "model"
    ml.ok(home, "init")
    assert _run([ml.python, "-c", TRAIN, str(saved)]).strip() == "skops"
    assert "registered tiny:1 (skops, signed)" in ml.ok(
        home, "models", "register", "tiny", str(saved)
    )
    for name, role in (("pat", "project_admin"), ("ben", "model_approver")):
        ml.ok(home, "roles", "principal", name)
        ml.ok(home, "roles", "bind", name, role, "--project", "default")
    admin = mint(ml, home, "pat", "--project", "default")
    approver = mint(
        ml, home, "ben", "--project", "default", "--role", "model_approver", token=admin
    )
    assert "approved tiny:1 by ben" in ml.ok(
        home, "--token", approver, "models", "approve", "tiny:1"
    )
    return home


def test_the_ml_extra_trains_registers_and_approves_a_model(ml: Venv, approved: Path) -> None:
    listed = json.loads(ml.ok(approved, "models", "list", "--output", "json"))
    assert [(m["name"], m["latest"]) for m in listed["models"]] == [("tiny", 1)]


def test_the_serve_extra_serves_the_model(
    venvs: dict[str, Future[Venv]], approved: Path, tmp_path: Path
) -> None:
    venv = venvs["serve"].result()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [venv.python, "-m", "ghaf", "serve", "tiny:1", "--port", str(port)]
    env = {**os.environ, "GHAF_HOME": str(approved)}
    with running([*command, "--insecure-dev"], f"{url}/v2/health/ready", tmp_path / "log", env):
        body = {"inputs": [{"name": "input", "shape": [2, 1], "datatype": "FP32", "data": [0, 3]}]}
        answer = httpx.post(f"{url}/v2/models/tiny/infer", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        low, high = answer.json()["outputs"][0]["data"][1::2]  # P(class 1) of each row
        assert low < 0.5 < high


def test_the_server_extra_runs_the_control_plane(
    core: Venv, venvs: dict[str, Future[Venv]], tmp_path: Path
) -> None:
    venv = venvs["server"].result()
    home = tmp_path / "home"
    venv.ok(home, "init")
    token = mint(venv, home, "root", "--project", "default")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [venv.python, "-m", "ghaf", "server", "--port", str(port)]
    env = {**os.environ, "GHAF_HOME": str(home)}
    with running(command, f"{url}/health", tmp_path / "server.log", env):
        assert httpx.get(f"{url}/api/v1/projects", timeout=30).status_code == 401
        # A core install is a client of it: GHAF_URL and a token, no home.
        remote = {"GHAF_URL": url, "GHAF_TOKEN": token}
        assert core.ok(tmp_path / "elsewhere", "whoami", env=remote).startswith("root")


def test_the_postgres_extra_keeps_metadata_in_postgresql(
    venvs: dict[str, Future[Venv]], tmp_path: Path, postgres_url: str
) -> None:
    venv = venvs["postgres"].result()
    env = {"GHAF_METADATA_URL": postgres_url}
    home = tmp_path / "home"
    venv.ok(home, "init", env=env)
    doctor = venv.ok(home, "doctor", env=env)
    assert "postgresql" in doctor and "FAIL" not in doctor


def test_the_s3_extra_keeps_artifacts_in_s3(
    venvs: dict[str, Future[Venv]], tmp_path: Path, s3_endpoint: str
) -> None:
    import boto3  # type: ignore[import-untyped]

    bucket = f"ghaf-{uuid.uuid4().hex[:10]}"
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    venv = venvs["s3"].result()
    env = {
        **credentials,
        "GHAF_ARTIFACT_URL": f"s3://{bucket}/ghaf",
        "GHAF_ARTIFACT_REGION": "us-east-1",
        "GHAF_S3_ENDPOINT_URL": s3_endpoint,
    }
    home = tmp_path / "home"
    venv.ok(home, "init", env=env)
    doctor = venv.ok(home, "doctor", env=env)
    assert f"s3://{bucket}/ghaf" in doctor and "FAIL" not in doctor


def test_the_nats_extra_publishes_events_to_nats(
    venvs: dict[str, Future[Venv]], tmp_path: Path, nats_url: str
) -> None:
    venv = venvs["nats"].result()
    env = {"GHAF_EVENT_BUS_URL": nats_url}
    home = tmp_path / "home"
    venv.ok(home, "init", env=env)
    doctor = venv.ok(home, "doctor", env=env)
    assert nats_url in doctor and "FAIL" not in doctor


REDIS_READ = """
import sys

from ghaf.features.online import open_online_store

store = open_online_store(sys.argv[1])
print(store.watermark("no-such-view"))
store.close()
"""


def test_the_redis_extra_reads_the_online_store(
    venvs: dict[str, Future[Venv]], tmp_path: Path, redis_url: str
) -> None:
    venv = venvs["redis"].result()
    url = f"{redis_url}?prefix=ghaf-packaging-{uuid.uuid4().hex[:8]}"
    assert _run([venv.python, "-c", REDIS_READ, url]).strip() == "None"


DELTA_WRITE = """
import sys

import pyarrow as pa
from deltalake import write_deltalake

write_deltalake(sys.argv[1], pa.table({"id": [1, 2, 3], "amount": [1.5, 2.5, 3.5]}))
"""


def test_the_data_extra_ingests_a_delta_table(
    venvs: dict[str, Future[Venv]], tmp_path: Path
) -> None:
    venv = venvs["data"].result()
    table = tmp_path / "delta"
    _run([venv.python, "-c", DELTA_WRITE, str(table)])
    home = tmp_path / "home"
    venv.ok(home, "init")
    venv.ok(home, "data", "ingest", f"delta:{table}", "--name", "d")
    assert json.loads(venv.ok(home, "data", "show", "d", "--output", "json"))["rows"] == 3


def test_the_ui_extra_installs_its_packages(venvs: dict[str, Future[Venv]]) -> None:
    """No UI module exists yet: the extra's own packages must install and import."""
    venv = venvs["ui"].result()
    _run([venv.python, "-c", "import jinja2, starlette"])


def test_the_all_extra_resolves_with_the_pins(core: Venv, dist: Dist) -> None:
    """Every extra together: pip resolves them against the pins (torch and ray included)."""
    core.pip("install", "--dry-run", f"{dist.wheel}[all]")
