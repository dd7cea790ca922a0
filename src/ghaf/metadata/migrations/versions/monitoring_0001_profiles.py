"""monitoring: stored reference profiles

Revision ID: monitoring_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "monitoring_0001"
down_revision = None
branch_labels = ("monitoring",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "monitoring_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("num_columns", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_profiles")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_monitoring_profiles_name_version")),
    )


def downgrade() -> None:
    op.drop_table("monitoring_profiles")
