"""features: the project of each definition

Revision ID: features_0003
Revises: features_0002

A name's project is the one its first ``features.apply`` was authorized and audited in
(the spine wrote that record, listing ``create KIND NAME v1``, in the same transaction as
the row); every version of the name gets it. A name with no such record gets the
default project (the migration config's ``default_project`` attribute when the caller
sets it, else the settings' default name).
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "features_0003"
down_revision = "features_0002"
branch_labels = None
depends_on = None

DEFAULT_PROJECT = "default"
"""``GhafSettings.project``'s default."""

_definitions = sa.table(
    "feature_definitions",
    sa.column("kind", sa.String()),
    sa.column("name", sa.String()),
    sa.column("project", sa.String()),
)
_audit = sa.table(
    "audit_records",
    sa.column("seq", sa.BigInteger()),
    sa.column("action", sa.String()),
    sa.column("project", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("details", sa.Text()),
)


def _applied_in(connection: sa.Connection) -> dict[tuple[str, str], str]:
    """(kind, name) -> project of the first allowed apply that changed it."""
    found: dict[tuple[str, str], str] = {}
    rows = connection.execute(
        sa.select(_audit.c.project, _audit.c.details)
        .where(_audit.c.action == "features.apply", _audit.c.outcome == "allowed")
        .order_by(_audit.c.seq)
    )
    for project, details in rows:
        changes = orjson.loads(details).get("changes")
        for change in changes if isinstance(changes, list) else ():
            parts = str(change).split(" ")  # "create feature_view NAME v1"
            if len(parts) == 4:
                found.setdefault((parts[1], parts[2]), project)
    return found


def upgrade() -> None:
    with op.batch_alter_table("feature_definitions") as batch:
        batch.add_column(sa.Column("project", sa.String(length=128), nullable=True))
    connection = op.get_bind()
    config = op.get_context().config
    default = None if config is None else config.attributes.get("default_project")
    applied_in = _applied_in(connection)
    names = connection.execute(sa.select(_definitions.c.kind, _definitions.c.name).distinct()).all()
    for kind, name in names:
        connection.execute(
            _definitions.update()
            .where(_definitions.c.kind == kind, _definitions.c.name == name)
            .values(project=applied_in.get((kind, name), default or DEFAULT_PROJECT))
        )
    with op.batch_alter_table("feature_definitions") as batch:
        batch.alter_column("project", existing_type=sa.String(length=128), nullable=False)
        batch.create_index(op.f("ix_feature_definitions_project"), ["project"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feature_definitions") as batch:
        batch.drop_index(op.f("ix_feature_definitions_project"))
        batch.drop_column("project")
