"""scheduling: project quotas, the job queue and its fair-share passes

Revision ID: scheduling_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "scheduling_0001"
down_revision = None
branch_labels = ("scheduling",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "project_quotas",
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("cpu_hours", sa.Float(), nullable=True),
        sa.Column("gpu_hours", sa.Float(), nullable=True),
        sa.Column("period_s", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project", name=op.f("pk_project_quotas")),
    )
    op.create_table(
        "queued_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("cpus", sa.Float(), nullable=False),
        sa.Column("gpus", sa.Float(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_by", sa.String(length=256), nullable=False),
        sa.Column("submitted_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=True),
        sa.Column("run_by", sa.String(length=256), nullable=True),
        sa.Column("claimed_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queued_jobs")),
    )
    with op.batch_alter_table("queued_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_queued_jobs_project", ["project"], unique=False)
        batch_op.create_index("ix_queued_jobs_status", ["status"], unique=False)
    op.create_table(
        "fair_share_passes",
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("pass_value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("project", name=op.f("pk_fair_share_passes")),
    )


def downgrade() -> None:
    op.drop_table("fair_share_passes")
    with op.batch_alter_table("queued_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_queued_jobs_status")
        batch_op.drop_index("ix_queued_jobs_project")
    op.drop_table("queued_jobs")
    op.drop_table("project_quotas")
