"""Registry on PostgreSQL: two processes registering at once get distinct version numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ghaf.home import init_home
from ghaf.models import save_model
from ghaf.registry import get_model_version, list_versions, load_model
from ghaf.settings import load_settings

_REGISTER_MANY = """
import sys
from pathlib import Path
from ghaf.platform import Platform
from ghaf.registry import register_model
from ghaf.settings import load_settings
platform = Platform(load_settings())
for _ in range(int(sys.argv[2])):
    v = register_model(platform, platform.admin(), "fraud", Path(sys.argv[1]))
    print(v.version, flush=True)
"""

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_concurrent_registrations_get_distinct_versions_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    home = tmp_path / "home"
    x = np.random.default_rng(7).normal(size=(40, 3))
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), tmp_path / "model")
    platform = init_home(load_settings(home=home, metadata_url=postgres_url))
    try:
        env = {**os.environ, "GHAF_HOME": str(home), "GHAF_METADATA_URL": postgres_url}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _REGISTER_MANY, str(tmp_path / "model"), "4"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        outputs = [proc.communicate(timeout=240) for proc in procs]  # reap both first
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
        versions = [int(line) for out, _ in outputs for line in out.split()]
        assert sorted(versions) == list(range(1, 9))
        assert [v.version for v in list_versions(platform, "fraud")] == list(range(1, 9))
        assert get_model_version(platform, "fraud").version == 8
        assert load_model(platform, "fraud:8").predict(x).shape == (40,)
    finally:
        platform.close()
