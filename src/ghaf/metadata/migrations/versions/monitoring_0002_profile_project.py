"""monitoring: the project of each stored profile

Revision ID: monitoring_0002
Revises: monitoring_0001

A version's project is the one its ``monitoring.profile.save`` was authorized and audited
in: the spine wrote that audit record in the same transaction as the row, so every row
saved through it has one. A row without one gets the default project (the migration
config's ``default_project`` attribute when the caller sets it, else the settings'
default name).
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "monitoring_0002"
down_revision = "monitoring_0001"
branch_labels = None
depends_on = None

DEFAULT_PROJECT = "default"
"""``GhafSettings.project``'s default."""

_profiles = sa.table(
    "monitoring_profiles",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("project", sa.String()),
)
_audit = sa.table(
    "audit_records",
    sa.column("seq", sa.BigInteger()),
    sa.column("action", sa.String()),
    sa.column("resource", sa.String()),
    sa.column("project", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("details", sa.Text()),
)


def _saved_in(connection: sa.Connection) -> dict[tuple[str, int], str]:
    """(name, version) -> project of each allowed save in the audit trail."""
    found: dict[tuple[str, int], str] = {}
    rows = connection.execute(
        sa.select(_audit.c.resource, _audit.c.project, _audit.c.details)
        .where(
            _audit.c.action == "monitoring.profile.save",
            _audit.c.outcome == "allowed",
            _audit.c.resource.like("profile:%"),
        )
        .order_by(_audit.c.seq)
    )
    for resource, project, details in rows:
        version = orjson.loads(details).get("version")
        if isinstance(version, int):
            found.setdefault((resource.removeprefix("profile:"), version), project)
    return found


def upgrade() -> None:
    with op.batch_alter_table("monitoring_profiles") as batch:
        batch.add_column(sa.Column("project", sa.String(length=128), nullable=True))
    connection = op.get_bind()
    config = op.get_context().config
    default = DEFAULT_PROJECT if config is None else config.attributes.get("default_project")
    saved_in = _saved_in(connection)
    for row_id, name, version in connection.execute(
        sa.select(_profiles.c.id, _profiles.c.name, _profiles.c.version)
    ).all():
        connection.execute(
            _profiles.update()
            .where(_profiles.c.id == row_id)
            .values(project=saved_in.get((name, version), default or DEFAULT_PROJECT))
        )
    with op.batch_alter_table("monitoring_profiles") as batch:
        batch.alter_column("project", existing_type=sa.String(length=128), nullable=False)
        batch.create_index(op.f("ix_monitoring_profiles_project"), ["project"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("monitoring_profiles") as batch:
        batch.drop_index(op.f("ix_monitoring_profiles_project"))
        batch.drop_column("project")
