"""pipelines: pipeline runs and step runs

Revision ID: pipelines_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "pipelines_0001"
down_revision = None
branch_labels = ("pipelines",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("executor", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("started_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
    )
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.create_index("ix_pipeline_runs_pipeline", ["pipeline"], unique=False)
        batch_op.create_index("ix_pipeline_runs_trigger", ["trigger"], unique=False)
    op.create_table(
        "pipeline_step_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("output_digest", sa.String(length=64), nullable=True),
        sa.Column("output_kind", sa.String(length=16), nullable=True),
        sa.Column("log_digest", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("resources", sa.Text(), nullable=False),
        sa.Column("cpu_s", sa.Float(), nullable=True),
        sa.Column("max_rss_mb", sa.Float(), nullable=True),
        sa.Column("started_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.id"],
            name=op.f("fk_pipeline_step_runs_run_id_pipeline_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_step_runs")),
    )
    with op.batch_alter_table("pipeline_step_runs", schema=None) as batch_op:
        batch_op.create_index("ix_pipeline_step_runs_run_id", ["run_id"], unique=False)
        batch_op.create_index("ix_pipeline_step_runs_cache_key", ["cache_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pipeline_step_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_step_runs_cache_key")
        batch_op.drop_index("ix_pipeline_step_runs_run_id")
    op.drop_table("pipeline_step_runs")
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_runs_trigger")
        batch_op.drop_index("ix_pipeline_runs_pipeline")
    op.drop_table("pipeline_runs")
