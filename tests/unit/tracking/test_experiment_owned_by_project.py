"""An experiment name belongs to the project that created it: a run of another project
is not filed under it (the write would be authorized in one project, land in another)."""

from __future__ import annotations

import pytest

from ghaf.errors import AlreadyExistsError
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.testing.people import person
from ghaf.tracking import search_runs
from ghaf.tracking.service import create_run, experiment_projects


def test_another_project_cannot_file_runs_under_an_experiment(platform: Platform) -> None:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    alice = person(platform, "alice", ["data_scientist"], project="fraud")
    rita = person(platform, "rita", ["data_scientist"], project="retail")
    run_id = create_run(platform.in_project("fraud"), alice, "churn", project="fraud")
    with pytest.raises(
        AlreadyExistsError,
        match="is taken in this home; names are unique across projects: choose another",
    ):
        create_run(platform.in_project("retail"), rita, "churn", project="retail")
    assert experiment_projects(platform) == {"churn": "fraud"}
    assert [r.run_id for r in search_runs(platform, experiments=["churn"]).runs] == [run_id]
