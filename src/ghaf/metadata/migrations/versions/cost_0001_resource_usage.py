"""cost: resource usage of runs, pipeline steps, batch jobs and deployments

Revision ID: cost_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "cost_0001"
down_revision = None
branch_labels = ("cost",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "resource_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=True),
        sa.Column("deployment", sa.String(length=300), nullable=True),
        sa.Column("parent", sa.String(length=200), nullable=True),
        sa.Column("within", sa.String(length=240), nullable=True),
        sa.Column("started_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("cpu_s", sa.Float(), nullable=False),
        sa.Column("cpu_request", sa.Float(), nullable=False),
        sa.Column("memory_peak_gb", sa.Float(), nullable=False),
        sa.Column("memory_gb_hours", sa.Float(), nullable=False),
        sa.Column("memory_request_gb", sa.Float(), nullable=False),
        sa.Column("gpu_class", sa.String(length=64), nullable=True),
        sa.Column("gpu_s", sa.Float(), nullable=False),
        sa.Column("gpu_request", sa.Float(), nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("recorded_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_usage")),
        sa.UniqueConstraint("kind", "ref", name=op.f("uq_resource_usage_kind_ref")),
    )
    op.create_index("ix_resource_usage_ended_at", "resource_usage", ["ended_at"], unique=False)
    op.create_index(
        "ix_resource_usage_project_ended_at",
        "resource_usage",
        ["project", "ended_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_resource_usage_project_ended_at", table_name="resource_usage")
    op.drop_index("ix_resource_usage_ended_at", table_name="resource_usage")
    op.drop_table("resource_usage")
