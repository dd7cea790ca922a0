"""The Ray executor keeps its driver on 127.0.0.1 even when ``ray`` was imported first."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from tests.conftest import service_missing

PROBE = """
import ray  # imported before Ghaf: Ray has read RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER already
from ray._private import services
from ghaf.pipelines.ray import _keep_ray_on_loopback
_keep_ray_on_loopback()
print(services.get_node_ip_address())
"""


def test_loopback_holds_when_ray_was_imported_first() -> None:
    if importlib.util.find_spec("ray") is None:  # not imported here: it would fix Ray's config
        service_missing("Ray", "ray is not installed: pip install 'ghaf[ray]'")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "127.0.0.1"
