"""Pipeline records across projects: cache reuse stays in a project, listings filter by
project in the query, and a run ends once."""

from __future__ import annotations

import pytest

from ghaf.errors import AlreadyExistsError
from ghaf.lineage import upstream
from ghaf.pipelines import get_run, list_runs, run_pipeline
from ghaf.pipelines.examples import numbers
from ghaf.pipelines.records import finish_run, fired_runs, run_projects, start_run
from ghaf.platform import Platform
from ghaf.projects import create_project


@pytest.fixture
def two_projects(platform: Platform) -> tuple[Platform, Platform]:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    return platform.in_project("fraud"), platform.in_project("retail")


def _record(platform: Platform, run_id: str, trigger: str = "manual") -> None:
    start_run(
        platform,
        platform.admin(),
        "toy",
        run_id=run_id,
        executor="local",
        trigger=trigger,
        params={},
        steps=[],
    )


def test_a_run_reuses_only_its_own_projects_cached_outputs(
    two_projects: tuple[Platform, Platform],
) -> None:
    fraud, retail = two_projects
    first = run_pipeline(fraud, fraud.admin(), numbers(rows=300))
    assert first.status == "succeeded", first.error
    assert first.project == "fraud"

    other = run_pipeline(retail, retail.admin(), numbers(rows=300))
    assert other.status == "succeeded", other.error
    assert sorted(other.executed) == sorted(first.executed)
    assert {s.status for s in other.steps} == {"succeeded"}
    fraud_steps = {f"run:{s.id}" for s in first.steps}
    for step in other.steps:
        assert not fraud_steps & set(upstream(retail, f"run:{step.id}"))

    again = run_pipeline(retail, retail.admin(), numbers(rows=300))
    assert {s.status for s in again.steps} == {"cached"}
    assert again.executed == []


def test_listings_filter_projects_in_the_query(two_projects: tuple[Platform, Platform]) -> None:
    fraud, retail = two_projects
    _record(retail, "r" * 32, trigger="cron:nightly")
    for i in range(5):  # newer than retail's run: a newest-N window would miss it
        _record(fraud, f"{i:032x}", trigger="cron:nightly")
    assert run_projects(fraud) == ["fraud", "retail"]

    assert [r.id for r in list_runs(fraud, limit=1, projects=["retail"])] == ["r" * 32]
    assert [r.id for r in fired_runs(fraud, None, 1, projects=["retail"])] == ["r" * 32]
    assert [r.id for r in fired_runs(fraud, "cron:nightly", 1, projects=["retail"])] == ["r" * 32]
    assert list_runs(fraud, projects=[]) == []
    assert fired_runs(fraud, projects=[]) == []
    assert fired_runs(fraud, pipeline="other") == []
    assert {r.project for r in list_runs(fraud, limit=10, projects=["fraud"])} == {"fraud"}
    assert len(list_runs(fraud, limit=10)) == 6


def test_a_run_ends_once(platform: Platform) -> None:
    _record(platform, "a" * 32)
    finish_run(platform, platform.admin(), "a" * 32, status="succeeded")
    ended = get_run(platform, "a" * 32)

    with pytest.raises(AlreadyExistsError, match="already ended \\(succeeded\\)"):
        finish_run(platform, platform.admin(), "a" * 32, status="cancelled", error="late")
    after = get_run(platform, "a" * 32)
    assert (after.status, after.error, after.finished_at) == ("succeeded", None, ended.finished_at)

    # The same end again (a runner recording the cancel a server recorded) changes nothing.
    finish_run(platform, platform.admin(), "a" * 32, status="succeeded")
    assert get_run(platform, "a" * 32).finished_at == ended.finished_at
