"""monitoring: monitor schedules per deployment and the results of their runs

Revision ID: monitoring_0003
Revises: monitoring_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "monitoring_0003"
down_revision = "monitoring_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=300), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("reference", sa.String(length=512), nullable=True),
        sa.Column("log_dir", sa.String(length=1024), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_schedules")),
        sa.UniqueConstraint(
            "project", "deployment", name=op.f("uq_monitor_schedules_project_deployment")
        ),
    )
    op.create_index(op.f("ix_monitor_schedules_next_run_at"), "monitor_schedules", ["next_run_at"])
    op.create_table(
        "monitor_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=300), nullable=False),
        sa.Column("model_version", sa.String(length=300), nullable=False),
        sa.Column("window_start", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("run_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("breaches", sa.Text(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("drifted_features", sa.Text(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("performance", sa.Text(), nullable=True),
        sa.Column("labels", sa.BigInteger(), nullable=False),
        sa.Column("labels_watermark", sa.BigInteger(), nullable=False),
        sa.Column("alerts", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_results")),
    )
    op.create_index(
        "ix_monitor_results_schedule_end", "monitor_results", ["schedule_id", "window_end"]
    )
    op.create_index(
        "ix_monitor_results_project_deployment",
        "monitor_results",
        ["project", "deployment", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_results_project_deployment", table_name="monitor_results")
    op.drop_index("ix_monitor_results_schedule_end", table_name="monitor_results")
    op.drop_table("monitor_results")
    op.drop_index(op.f("ix_monitor_schedules_next_run_at"), table_name="monitor_schedules")
    op.drop_table("monitor_schedules")
