"""slo: SLO definitions per deployment

Revision ID: slo_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "slo_0001"
down_revision = None
branch_labels = ("slo",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "slo_definitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=300), nullable=False),
        sa.Column("sli", sa.String(length=16), nullable=False),
        sa.Column("objective", sa.Float(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("threshold_ms", sa.Float(), nullable=True),
        sa.Column("min_requests_per_hour", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slo_definitions")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_slo_definitions_project_name")),
    )


def downgrade() -> None:
    op.drop_table("slo_definitions")
