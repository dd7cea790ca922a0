"""Where a historical join runs (``on=`` / ``--on``): read as every Ray door reads it, and a
bad value is a one-line error naming the option, before anything connects to Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghaf.errors import InvalidInputError
from ghaf.pipelines.ray_target import ray_target
from tests.unit.server.cli_runner import ghaf


def test_on_values_and_a_bad_one_at_the_cli(tmp_path: Path) -> None:
    assert ray_target(None) == ray_target("local") == (False, None)
    assert ray_target("ray", "10.0.0.5:6379") == (True, "10.0.0.5:6379")
    assert ray_target("ray") == (True, None)  # no ray_address: a new local node
    assert ray_target("ray://127.0.0.1:6379") == (True, "127.0.0.1:6379")
    for bad in ("127.0.0.1:6379", "ray://host", "ray://host:0", "ray://a/b:1", "spark://x:1"):
        with pytest.raises(InvalidInputError, match=f"on {bad!r} is not local, ray or ray://"):
            ray_target(bad)

    home = ["--home", str(tmp_path), "features", "retrieve", "train", "--features", "v:f"]
    bad = ghaf(*home, "--entities", "e.parquet", "--on", "spark://nowhere:1")
    assert bad.returncode == 3, bad.stderr
    first, *rest = bad.stderr.strip().splitlines()
    assert first == "error: --on 'spark://nowhere:1' is not local, ray or ray://HOST:PORT"
    assert [line.split(":")[0].strip() for line in rest] == ["hint"]
