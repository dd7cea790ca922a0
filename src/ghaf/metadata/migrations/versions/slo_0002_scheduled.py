"""slo: scheduled SLOs - where each reads its counters, and the samples read

Revision ID: slo_0002
Revises: slo_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "slo_0002"
down_revision = "slo_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slo_scrapes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=False),
        sa.Column("next_due", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("firing", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slo_scrapes")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_slo_scrapes_project_name")),
    )
    op.create_table(
        "slo_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("good", sa.Float(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slo_samples")),
    )
    op.create_index("ix_slo_samples_project_name_ts", "slo_samples", ["project", "name", "ts"])


def downgrade() -> None:
    op.drop_index("ix_slo_samples_project_name_ts", table_name="slo_samples")
    op.drop_table("slo_samples")
    op.drop_table("slo_scrapes")
