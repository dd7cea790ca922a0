"""A model name belongs to the project that registered it first: nobody adds a version to
it from another project (the write would be authorized in the wrong project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghaf.errors import AlreadyExistsError
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import list_versions, register_model
from ghaf.testing.people import person


def test_another_project_cannot_add_a_version(platform: Platform, model_dir: Path) -> None:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    alice = person(platform, "alice", ["data_scientist"], project="fraud")
    rita = person(platform, "rita", ["data_scientist"], project="retail")
    register_model(platform.in_project("fraud"), alice, "churn", model_dir, project="fraud")
    with pytest.raises(
        AlreadyExistsError,
        match="is taken in this home; names are unique across projects: choose another",
    ):
        register_model(platform.in_project("retail"), rita, "churn", model_dir, project="retail")
    versions = list_versions(platform, "churn")
    assert [(v.version, v.project, v.created_by) for v in versions] == [(1, "fraud", "alice")]
