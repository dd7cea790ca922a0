"""release: release policies, break-glass requests, provenance of authors and approvals

Revision ID: release_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "release_0001"
down_revision = None
branch_labels = ("release",)
depends_on = "registry_0001"


def upgrade() -> None:
    op.create_table(
        "release_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_policies")),
        sa.UniqueConstraint("project", "version", name=op.f("uq_release_policies_project_version")),
    )
    op.create_index(
        op.f("ix_release_policies_project"), "release_policies", ["project"], unique=False
    )
    op.create_table(
        "release_break_glass",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=256), nullable=False),
        sa.Column("requested_via", sa.String(length=256), nullable=False),
        sa.Column("requested_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("confirmed_by", sa.String(length=256), nullable=True),
        sa.Column("confirmed_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_break_glass")),
    )
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("author_credential", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("author_minted_by", sa.String(length=256), nullable=True))
    with op.batch_alter_table("model_approvals") as batch:
        batch.add_column(sa.Column("credential", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("flags", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_approvals") as batch:
        batch.drop_column("flags")
        batch.drop_column("credential")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("author_minted_by")
        batch.drop_column("author_credential")
    op.drop_table("release_break_glass")
    op.drop_index(op.f("ix_release_policies_project"), table_name="release_policies")
    op.drop_table("release_policies")
