"""Ghaf in its two modes for the contract suite: embedded (a home on this machine, its OS
owner acting) and remote (a real ``ghaf server`` process on 127.0.0.1, a token for a
user bound in the project), with what a user types in each.

Both modes get the same project and the same input files, so what they answer can be
compared once ids, times and the acting person's name are normalised.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ghaf
from ghaf.client import Client
from ghaf.home import init_home
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf as run_ghaf
from tests.unit.serving.server_processes import ServerProcess

MODES = ["embedded", "remote"]
PROJECT = "fraud"
REMOTE_USER = "alice"
REMOTE_ROLES = ("data_scientist", "data_engineer", "model_approver", "release_manager")
"""What the remote user holds in the project: enough for every flow of the suite, and the
approver role so that approving their own version is refused by four eyes, as it is for
the home's owner (who holds every owner role)."""
CSV = "id,amount,email\n1,10.5,a@x.ae\n2,20.0,b@x.ae\n3,30.25,c@x.ae\n"
CSV_2 = "id,amount\n1,10.5\n2,99.0\n"
CONTRACT = (
    "columns:\n  id: {type: int64, unique: true, tag: public}\n"
    "  amount: {type: double, min: 0}\n  email: {type: string}\n"
)
STRICT = "columns:\n  amount: {min: 15}\n"


@dataclass
class Mode:
    """One mode of Ghaf as a user meets it: the SDK client and the ``ghaf`` command."""

    name: str
    platform: Platform
    """The home itself, for set-up and for checking what was stored (not a door)."""
    user: str
    """Who acts: the home's OS owner (embedded) or the token's principal (remote)."""
    env: dict[str, str]
    url: str | None = None
    token: str | None = None
    server: ServerProcess | None = field(default=None, repr=False)

    def client(self) -> Client:
        """``ghaf.connect`` as a user calls it in this mode."""
        if self.url is None:
            return ghaf.connect(home=self.platform.settings.home)
        return ghaf.connect(self.url, token=self.token)

    def ghaf(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ghaf ARGS`` as a script runs it in this mode."""
        return run_ghaf(*args, env=self.env)


@dataclass(frozen=True)
class Inputs:
    """The files both modes are given (one directory, so their paths agree)."""

    root: Path
    csv: Path
    csv_2: Path
    contract: Path
    strict: Path
    model: Path


def make_inputs(root: Path) -> Inputs:
    """Write the suite's input files under ``root`` (a model saved with scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    root.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": ("tx.csv", CSV),
        "csv_2": ("tx2.csv", CSV_2),
        "contract": ("tx.yaml", CONTRACT),
        "strict": ("strict.yaml", STRICT),
    }
    for filename, text in paths.values():
        (root / filename).write_text(text)
    x = np.random.default_rng(7).normal(size=(60, 3))
    model = root / "model"
    if not model.exists():
        save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), model)
    return Inputs(root, *(root / filename for filename, _ in paths.values()), model=model)


@contextmanager
def open_mode(name: str, platform: Platform, workdir: Path) -> Iterator[Mode]:
    """``name`` mode over the initialised home ``platform``, with :data:`PROJECT` made.

    Remote: the home is served by a ``ghaf server`` process, and the client side has a
    home of its own with nothing in it (no database, no key): only the URL and a token.
    """
    create_project(platform, platform.admin(), PROJECT)
    home = platform.settings.home
    if name == "embedded":
        yield Mode(
            name, platform, platform.admin().name, {"GHAF_HOME": str(home), "GHAF_PROJECT": PROJECT}
        )
        return
    token = mint(platform, REMOTE_USER, REMOTE_ROLES, project=PROJECT, bind_on=PROJECT)
    workdir.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(home, ("server",), "/health", workdir / "server.log").start()
    env = {
        "GHAF_URL": server.url,
        "GHAF_TOKEN": token,
        "GHAF_HOME": str(workdir / "client"),
        "GHAF_PROJECT": PROJECT,
    }
    try:
        yield Mode(name, platform, REMOTE_USER, env, server.url, token, server)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


@contextmanager
def fresh_home(path: Path) -> Iterator[Platform]:
    """A second initialised home (for tests that hold both modes at once)."""
    with init_home(load_settings(home=path)) as platform:
        yield platform


_HEX_ID = re.compile(r"\b([0-9a-f]{64}|[0-9a-f]{32}|[0-9a-f]{8})\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")
_SCRATCH = re.compile(r"\S*/tmp/uploaded-[^/\s]+/")
BY_NATURE = frozenset({"seconds", "author_credential", "author_minted_by"})
"""Fields that differ between two runs or two modes by nature: how long a step took, and
how the author proved who they were (the home's OS account, or a token)."""


def normalise(value: Any, *, user: str) -> Any:
    """``value`` with what differs by nature between two homes, two runs and two people
    replaced: ids and digests (each home signs with its own key), ISO times, the acting
    person's name, a server's scratch directory and the :data:`BY_NATURE` fields; the
    shape and every other value are kept, so they still compare."""
    if isinstance(value, dict):
        return {
            k: "<by nature>" if k in BY_NATURE else normalise(v, user=user)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [normalise(v, user=user) for v in value]
    if isinstance(value, str):
        text = _SCRATCH.sub("<scratch>/", value)
        text = _TIME.sub("<time>", _HEX_ID.sub("<id>", text))
        return "<user>" if text == user else text.replace(f"{user} ", "<user> ")
    return value
