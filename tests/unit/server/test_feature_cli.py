"""``ghaf features`` against ``ghaf server`` (``--url``) prints what it prints on the home:
the same plans, tables and JSON, the same errors and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from ghaf.data import write_dataset
from ghaf.platform import Platform
from ghaf.testing.online_store import make_source
from ghaf.testing.people import mint
from tests.unit.server.test_cli_remote import ghaf
from tests.unit.server.test_feature_routes import definitions, entity_frame
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
FEATURES = "customer_stats:spend,customer_stats:count,customer_stats:segment"


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """(the home's CLI arguments, the server's), for alice."""
    admin = platform.admin()
    write_dataset(
        platform, admin, "stats", pq.read_table(make_source(tmp_path / "s.parquet")), source="t"
    )
    here = platform.default_project
    token = mint(platform, "alice", ["data_engineer", "data_scientist"], project=here, bind_on=here)
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        home = ["--home", str(platform.settings.home), "--token", token]
        yield home, ["--url", server.url, "--token", token]
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _both(home: list[str], remote: list[str], *command: str, code: int = 0) -> tuple[str, str]:
    """``command``'s stdout on the home and against the server (the same exit code)."""
    local = ghaf(*home, *command)
    far = ghaf(*remote, *command)
    assert local.returncode == far.returncode == code, (command, local.stderr, far.stderr)
    return local.stdout, far.stdout


def test_features_commands_print_the_same_in_both_modes(
    served: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    home, remote = served
    defs = tmp_path / "defs.yaml"
    defs.write_text(yaml.safe_dump(definitions()))
    for output in ((), ("--output", "json")):
        local, far = _both(home, remote, "features", "apply", str(defs), "--dry-run", *output)
        assert far == local and ("+ feature_view customer_stats v1" in far or output)
    applied = ghaf(*remote, "features", "apply", str(defs))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[-1] == "applied 3 change(s)"
    until = ("--until", "2026-01-31T00:00:00+00:00", "--full")
    for output in ((), ("--output", "json")):
        for command in (
            ("features", "apply", str(defs), "--dry-run"),
            ("features", "list"),
            ("features", "materialize", *until),
        ):
            local, far = _both(home, remote, *command, *output)
            assert far == local, command
            if output:
                json.loads(far)
    entities = tmp_path / "entities.parquet"
    pq.write_table(entity_frame(), entities)
    retrieve = ("features", "retrieve", "train", "--features", FEATURES, "--entities")
    local, far = _both(
        home,
        remote,
        *retrieve,
        str(entities),
        "--download",
        str(tmp_path / "l.parquet"),
        "-o",
        "json",
    )
    assert far == local  # the same rows saved twice are one version
    assert json.loads(far)["training_set"]["rows"] == 5
    table = ghaf(*remote, *retrieve, str(entities), "--download", str(tmp_path / "r.parquet"))
    assert table.stdout.startswith("saved training set train:1: 5 rows, 6 columns; written to")
    assert pq.read_table(tmp_path / "r.parquet").equals(pq.read_table(tmp_path / "l.parquet"))


def test_errors_and_exit_codes_are_the_same(
    served: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    home, remote = served
    missing = ("features", "apply", str(tmp_path / "nope.yaml"))
    local, far = ghaf(*home, *missing), ghaf(*remote, *missing)
    assert local.returncode == far.returncode == 3
    assert far.stderr.splitlines()[0] == local.stderr.splitlines()[0]
    over_a_path = tmp_path / "path.yaml"
    over_a_path.write_text(yaml.safe_dump(definitions(source="/etc/passwd")))
    refused = ghaf(*remote, "features", "apply", str(over_a_path))
    assert refused.returncode == 3 and "feature_views.0.source" in refused.stderr
    lookup = ghaf(*remote, "features", "get", "--features", "x:y", "--entity", "customer_id=1")
    assert lookup.returncode == 2 and "GHAF_URL" in lookup.stderr  # the feature server's job
