"""The server's own loader consults the release policy (defence in depth behind deployments).

``ghaf serve`` records a deployment first, which the policy already guards; the loader
that every server worker calls must refuse on its own too, so a path that skips the
deployment record (a worker, a future door) still cannot serve an unapproved version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ghaf.errors import PolicyViolationError
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import register_model
from ghaf.serving.models import resolve_model
from tests.unit.serving.server_processes import second_person


def test_the_loader_refuses_what_the_policy_refuses(
    platform: Platform, trained: Any, tmp_path: Path
) -> None:
    save_model(trained.model, tmp_path / "saved")
    register_model(platform, platform.admin(), "fraud", tmp_path / "saved")
    with pytest.raises(PolicyViolationError, match=r"fraud:1 may not be served.*approved"):
        resolve_model(platform, "fraud:1", tmp_path / "served")
    assert not (tmp_path / "served").exists()  # refused before a byte is decrypted
    scored = resolve_model(platform, "fraud:1", tmp_path / "batch", serving=False)
    assert scored.name == "fraud"  # batch scoring is not serving: no release needed
    from ghaf.registry import approve_model_version

    approve_model_version(platform, second_person(platform), "fraud:1")
    served = resolve_model(platform, "fraud:1", tmp_path / "served")
    assert (served.name, served.version, served.project) == ("fraud", "1", "default")
