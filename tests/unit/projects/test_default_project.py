"""The home's default project is a project like the others on every route, though
``ghaf init`` makes no row for it."""

from __future__ import annotations

from pathlib import Path

import ghaf
from ghaf.home import init_home
from ghaf.projects import list_projects
from ghaf.projects.service import project_names
from ghaf.settings import load_settings


def test_the_default_project_s_lineage_reaches_its_readers(tmp_path: Path) -> None:
    """Routes that list every project (OpenLineage export, pipelines) once skipped the
    default project, which has no row: its own readers got nothing back."""
    settings = load_settings(home=tmp_path / "home")
    with init_home(settings) as platform:
        assert list_projects(platform) == []  # no row ...
        assert project_names(platform) == ["default"]  # ... and still a project
    table = tmp_path / "tx.csv"
    table.write_text("id,amount\n1,10.5\n2,20.0\n")
    with ghaf.connect(home=settings.home) as client:
        client.ingest(table, "tx", project="default")
        events = client.openlineage_events()
    assert [e["eventType"] for e in events] == ["COMPLETE"]
    assert {e["job"]["namespace"] for e in events} == {"ghaf://default"}
    assert [o["name"] for o in events[0]["outputs"]] == ["tx:1"]
