"""A signature says what it is for (issue 17, finding 2), at every door that loads a model.

The attacker can write the metadata database and the artifact store, and may even have
had a trusted key sign something once (an insider, an old version signed before Ghaf
named releases). They point ``fraud:1`` (approved, on ``champion``) at bytes that
verify: ``fraud:2``'s files and signature, ``loan:1``'s, or a re-signed copy. Each door
must refuse with an ``IntegrityError`` naming what was asked for and what the signature
is for: ``ghaf.load_model``, ``download_model``, ``ghaf verify``, ``ghaf gate check``,
``ghaf predict`` and ``ghaf serve``.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import ghaf
from ghaf.cli.main import app
from ghaf.errors import IntegrityError
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import (
    ModelVersion,
    approve_model_version,
    download_model,
    get_model_version,
    register_model,
    set_alias,
)
from ghaf.registry.files import release_digests, seal_dir, upload_dir
from ghaf.registry.service import create_model_version
from ghaf.security.release_manifest import RELEASE_FILE, Release
from ghaf.security.signing import sign_model_dir
from tests.unit.registry.conftest import X, Y
from tests.unit.serving.server_processes import second_person

SERVE = ("serve", "fraud@champion", "--port", "0")
POLICY = "name: ci\nrequire:\n  signature: true\n"


@dataclass(frozen=True)
class World:
    platform: Platform
    fraud1: ModelVersion
    fraud2: ModelVersion
    loan1: ModelVersion
    tmp: Path


@pytest.fixture
def world(platform: Platform, tmp_path: Path) -> World:
    from sklearn.linear_model import LogisticRegression

    owner = platform.admin()
    save_model(LogisticRegression().fit(X, Y), tmp_path / "good")
    save_model(LogisticRegression().fit(X, 1 - Y), tmp_path / "evil")
    fraud1 = register_model(platform, owner, "fraud", tmp_path / "good")
    fraud2 = register_model(platform, owner, "fraud", tmp_path / "evil")
    loan1 = register_model(platform, owner, "loan", tmp_path / "evil")
    approve_model_version(platform, second_person(platform), "fraud:1")
    set_alias(platform, owner, "fraud", "champion", 1)
    return World(platform, fraud1, fraud2, loan1, tmp_path)


def _sql(platform: Platform, statement: str, *args: object) -> None:
    with sqlite3.connect(platform.settings.home / "ghaf.db") as db:
        db.execute(statement, args)


def _point(world: World, files: dict[str, dict[str, object]]) -> None:
    """Make the registry's fraud:1 row list ``files``."""
    _sql(
        world.platform,
        "UPDATE model_versions SET files = ? WHERE version = 1 AND model_id = "
        "(SELECT id FROM registered_models WHERE name = 'fraud')",
        json.dumps(files),
    )


def _resigned(world: World, edit: Callable[[Path], None]) -> dict[str, dict[str, object]]:
    """fraud:1's files, edited, then signed again with the home's own (trusted) key."""
    work = world.tmp / "resigned"
    for path, entry in world.fraud1.files.items():
        world.platform.artifacts.get(str(entry["digest"]), work / path)
    edit(work)
    sign_model_dir(world.platform.settings, work)
    stored = {}
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        info = world.platform.artifacts.put(path)
        stored[path.relative_to(work).as_posix()] = {"digest": info.digest, "size": info.size}
    return stored


def _lying_release(world: World) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        release = Release.read(directory)
        assert release is not None
        files = {**release.files, "model.skops": world.fraud2.files["model.skops"]["digest"]}
        Release(release.model, release.version, release.project, files).write(directory)

    return edit


def _another_version(world: World) -> str:
    _point(world, world.fraud2.files)
    return "fraud:1 refused: its files are signed for fraud:2, not fraud:1"


def _another_model(world: World) -> str:
    _point(world, world.loan1.files)
    return "fraud:1 refused: its files are signed for loan:1, not fraud:1"


def _another_project(world: World) -> str:
    _sql(world.platform, "UPDATE registered_models SET project = 'payments' WHERE name = 'fraud'")
    project = world.platform.default_project
    return f"fraud:1 refused: signed for project '{project}', not 'payments'"


def _no_release(world: World) -> str:
    _point(world, _resigned(world, lambda d: (d / RELEASE_FILE).unlink()))
    return "fraud:1 refused: its signature names no release (ghaf-release.json is missing)"


def _lying_digest(world: World) -> str:
    _point(world, _resigned(world, _lying_release(world)))
    forged = str(world.fraud2.files["model.skops"]["digest"])[:12]
    real = str(world.fraud1.files["model.skops"]["digest"])[:12]
    return (
        f"ghaf-release.json in <dir> does not match the signed files: "
        f"model.skops (release manifest {forged}, signature {real})"
    )


TAMPERINGS: dict[str, Callable[[World], str]] = {
    "fraud:1 -> fraud:2's files and signature": _another_version,
    "fraud:1 -> loan:1's files and signature": _another_model,
    "model moved to another project": _another_project,
    "re-signed without a release": _no_release,
    "re-signed release lying about a digest": _lying_digest,
}


def _matches(expected: str, headline: str) -> bool:
    words = " ".join(headline.split())
    pattern = re.escape(expected).replace(re.escape("<dir>"), r"\S+")
    return re.search(pattern, words) is not None


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, IntegrityError), (args, result.output, result.exception)
    return result.exception.headline


def _input(world: World) -> Path:
    source = world.tmp / "in.parquet"
    pq.write_table(pa.table({f"f{i}": X[:5, i] for i in range(X.shape[1])}), source)
    return source


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_every_in_process_door_refuses_files_signed_for_something_else(
    world: World, tampering: str
) -> None:
    expected = TAMPERINGS[tampering](world)
    policy = world.tmp / "ci.yaml"
    policy.write_text(POLICY)
    scored = world.tmp / "scored.parquet"

    def sdk_load() -> str:
        with pytest.raises(IntegrityError) as info:
            ghaf.load_model("fraud:1", world.platform)
        return info.value.headline

    def sdk_download() -> str:
        with pytest.raises(IntegrityError) as info:
            download_model(world.platform, "fraud@champion", world.tmp / "dl")
        return info.value.headline

    doors: dict[str, Callable[[], str]] = {
        "ghaf.load_model": sdk_load,
        "download_model": sdk_download,
        "ghaf verify": lambda: _cli("verify", "fraud:1"),
        "ghaf gate check": lambda: _cli("gate", "check", "fraud:1", "--policy", str(policy)),
        "ghaf predict": lambda: _cli("predict", "fraud:1", str(_input(world)), str(scored)),
    }
    refusals = {door: call() for door, call in doors.items()}
    wrong = {door: text for door, text in refusals.items() if not _matches(expected, text)}
    assert wrong == {}, f"expected {expected!r}"
    assert not scored.exists()


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_ghaf_serve_refuses_to_start(world: World, tampering: str) -> None:
    expected = TAMPERINGS[tampering](world)
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(world.platform.settings.home), *SERVE],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 8, done.stdout + done.stderr
    assert _matches(expected, done.stderr), done.stderr
    assert "Traceback" not in done.stderr


def test_intact_versions_load_at_every_door_and_say_what_they_are(world: World) -> None:
    from sklearn.linear_model import LogisticRegression

    model = ghaf.load_model("fraud@champion", world.platform)
    assert np.array_equal(model.predict(X), LogisticRegression().fit(X, Y).predict(X))
    result = CliRunner().invoke(app, ["verify", "fraud:2", "--output", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    release = body["release"]
    assert (release["model"], release["version"]) == ("fraud", 2)
    assert release["project"] == world.platform.default_project
    assert release["files"]["model.skops"] == world.fraud2.files["model.skops"]["digest"]
    assert RELEASE_FILE in body["files"] and "model.skops" in body["files"]
    text = CliRunner().invoke(app, ["verify", "loan:1"])
    assert text.exit_code == 0, text.output
    assert "signature trusted; signed for loan:1 in project" in " ".join(text.output.split())


def test_a_version_is_signed_for_the_number_it_got_when_another_took_the_expected_one(
    platform: Platform, model_dir: Path
) -> None:
    """Registration signs for the number it expects before the transaction; if another
    registration commits that number first, the version is signed again for its own."""
    owner = platform.admin()
    register_model(platform, owner, "fraud", model_dir)  # takes 1
    staged = model_dir.parent / "staged"
    shutil.copytree(model_dir, staged)
    files = upload_dir(platform, staged)
    stale = Release("fraud", 1, platform.default_project, release_digests(files))
    files |= seal_dir(platform, staged, stale)  # signed for 1, which is already taken
    version = create_model_version(
        platform,
        owner,
        "fraud",
        flavor="skops",
        files=files,
        sealed=staged,
        source=str(staged),
        run_id=None,
        signature={},
        example_digest=None,
        metrics={},
        lineage=[],
        description="",
        run_info=None,
    )
    assert version.version == 2
    assert ghaf.load_model("fraud:2", platform).predict(X[:3]).shape == (3,)
    assert get_model_version(platform, "fraud:2").files[RELEASE_FILE] != files[RELEASE_FILE]


def test_a_downloaded_version_is_served_from_its_directory_as_what_it_is_signed_for(
    world: World,
) -> None:
    from tests.unit.serving.server_processes import ServerProcess

    directory = download_model(world.platform, "fraud:2", world.tmp / "fraud-download")
    home = world.platform.settings.home
    server = ServerProcess(
        home,
        ("serve", str(directory), "--flavor", "skops", "--insecure-dev"),
        "/v2/health/ready",
        world.tmp / "serve.log",
    ).start()
    try:
        meta = httpx.get(f"{server.url}/v2/models/fraud", timeout=30)
        ready = httpx.get(f"{server.url}/v2/models/fraud/versions/2/ready", timeout=30)
    finally:
        log = server.stop()
    assert meta.status_code == 200, log
    assert (meta.json()["name"], meta.json()["versions"]) == ("fraud", ["2"])
    assert ready.status_code == 200, log
    verified = CliRunner().invoke(app, ["verify", str(directory)])
    assert "signed for fraud:2 in project" in " ".join(verified.output.split())


def test_a_directory_signed_without_a_release_is_served_under_its_own_name(
    world: World,
) -> None:
    directory = world.tmp / "good"  # saved, never registered from here: no release
    sign_model_dir(world.platform.settings, directory)
    result = CliRunner().invoke(app, ["verify", str(directory), "--output", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["release"] is None
    text = CliRunner().invoke(app, ["verify", str(directory)])
    assert "it names no release" in " ".join(text.output.split())
    from ghaf.serving.models import local_model

    spec = local_model(world.platform.settings, directory, "skops")
    assert (spec.name, spec.version, spec.project) == ("good", "1", None)


@pytest.mark.slow
def test_concurrent_registrations_are_each_signed_for_their_own_number(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    from tests.unit.registry.test_registry import register_concurrently

    numbers = register_concurrently(model_dir, {"GHAF_HOME": str(platform.settings.home)}, 3)
    assert sorted(numbers) == list(range(1, 7))
    for number in numbers:
        directory = download_model(platform, f"fraud:{number}", tmp_path / str(number))
        release = Release.read(directory)
        assert release is not None and release.ref == f"fraud:{number}"
