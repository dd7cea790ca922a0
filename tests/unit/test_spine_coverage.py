"""Every governed write path is registered and exercised: a new one without an example fails.

Writes outside the spine are refused by the engine (see the metadata contract), so
together these show no write path bypasses authorize → act → audit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

import ghaf
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.spine import WRITE_OPERATIONS

_SKIP_PREFIXES = (
    "ghaf.__main__",
    "ghaf.cli",
    "ghaf.testing",
    "ghaf.demo",
    "ghaf.metadata.migrations",
)


def _import_every_module() -> None:
    for info in pkgutil.walk_packages(ghaf.__path__, "ghaf."):
        if not info.name.startswith(_SKIP_PREFIXES):
            importlib.import_module(info.name)


def _home_init(platform: Platform) -> None:
    from ghaf.home import _record_home

    _record_home(platform, platform.admin())


def _project_create(platform: Platform) -> None:
    create_project(platform, platform.admin(), "example")


def _dataset_write(platform: Platform) -> None:
    import pyarrow as pa

    from ghaf.data import write_dataset

    write_dataset(platform, platform.admin(), "example", pa.table({"a": [1]}), source="test")


EXAMPLES: dict[str, Callable[[Platform], None]] = {
    "dataset.write": _dataset_write,
    "home.init": _home_init,
    "project.create": _project_create,
}
"""One call per governed action; add yours when you add a governed function."""


def test_every_governed_action_has_an_example() -> None:
    _import_every_module()
    assert set(WRITE_OPERATIONS) == set(EXAMPLES), (
        "add an example for each new governed action to EXAMPLES"
    )


@pytest.mark.parametrize("action", sorted(EXAMPLES))
def test_each_action_appends_exactly_one_audit_record(platform: Platform, action: str) -> None:
    with platform.read_session() as session:
        before = session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()
    EXAMPLES[action](platform)
    with platform.read_session() as session:
        after = session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()
        last = session.execute(
            select(AuditRecordRow).order_by(AuditRecordRow.seq.desc()).limit(1)
        ).scalar_one()
    assert after == before + 1
    assert last.action == action
    assert last.outcome == "allowed"
