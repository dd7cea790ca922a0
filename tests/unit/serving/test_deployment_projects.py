"""A deployment serves its own project's model versions only (embedded mode too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ghaf.errors import NotFoundError
from ghaf.lineage import deployments_using
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.deployments import (
    create_deployment,
    get_deployment,
    list_deployments,
    update_deployment,
)
from ghaf.testing.people import person


@pytest.fixture
def two_projects(platform: Platform, trained: Any, tmp_path: Path) -> tuple[Platform, Platform]:
    """fraud:1 in project fraud and shop:1 in project retail, each approved there."""
    save_model(trained.model, tmp_path / "saved")
    for project, model in (("fraud", "fraud"), ("retail", "shop")):
        create_project(platform, platform.admin(), project)
        here = platform.in_project(project)
        ana = person(platform, f"ana-{project}", ["data_scientist"], project=project)
        ben = person(platform, f"ben-{project}", ["model_approver"], project=project)
        register_model(here, ana, model, tmp_path / "saved", project=project)
        approve_model_version(here, ben, f"{model}:1")
    return platform.in_project("fraud"), platform.in_project("retail")


def test_a_deployment_refuses_another_projects_version(
    two_projects: tuple[Platform, Platform],
) -> None:
    fraud, retail = two_projects
    with pytest.raises(NotFoundError, match="fraud:1 does not exist in project 'retail'"):
        create_deployment(retail, retail.admin(), "shop-live", ["shop:1", "fraud:1"])
    with pytest.raises(NotFoundError, match="in project 'retail'"):
        create_deployment(retail, retail.admin(), "shop-live", ["shop:1"], shadow="fraud:1")
    assert list_deployments(retail) == []
    assert deployments_using(retail, "model:fraud:1") == []

    live = create_deployment(retail, retail.admin(), "shop-live", ["shop:1"])
    assert (live.project, live.models) == ("retail", {"shop:1": 1.0})
    with pytest.raises(NotFoundError, match="fraud:1 does not exist in project 'retail'"):
        update_deployment(retail, retail.admin(), "shop-live", models=["fraud:1"])
    with pytest.raises(NotFoundError, match="fraud:1 does not exist in project 'retail'"):
        update_deployment(retail, retail.admin(), "shop-live", shadow="fraud:1")
    # Authorized in fraud, a change to retail's deployment reads as a missing one.
    with pytest.raises(NotFoundError, match="'shop-live' does not exist in project 'fraud'"):
        update_deployment(fraud, fraud.admin(), "shop-live", status="stopped")
    assert get_deployment(retail, "shop-live") == live
    assert deployments_using(retail, "model:fraud:1") == []
