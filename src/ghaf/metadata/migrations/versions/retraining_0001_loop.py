"""retraining: each deployment's retraining policy and the closed loop's runs

Revision ID: retraining_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "retraining_0001"
down_revision = None
branch_labels = ("retraining",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "retrain_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=300), nullable=False),
        sa.Column("pipeline", sa.String(length=512), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("alerts", sa.Text(), nullable=False),
        sa.Column("cooldown_s", sa.Float(), nullable=False),
        sa.Column("max_runs", sa.Integer(), nullable=True),
        sa.Column("window_s", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_policies")),
        sa.UniqueConstraint(
            "project", "deployment", name=op.f("uq_retrain_policies_project_deployment")
        ),
    )
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=300), nullable=False),
        sa.Column("event", sa.String(length=256), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=300), nullable=True),
        sa.Column("incident", sa.String(length=16), nullable=True),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pipeline_run", sa.String(length=32), nullable=True),
        sa.Column("candidate", sa.String(length=300), nullable=True),
        sa.Column("champion", sa.String(length=300), nullable=True),
        sa.Column("canary", sa.String(length=128), nullable=True),
        sa.Column("fired_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_runs")),
        sa.UniqueConstraint("event", name=op.f("uq_retrain_runs_event")),
    )
    op.create_index(
        "ix_retrain_runs_project_deployment", "retrain_runs", ["project", "deployment", "id"]
    )
    op.create_index("ix_retrain_runs_status", "retrain_runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_retrain_runs_status", table_name="retrain_runs")
    op.drop_index("ix_retrain_runs_project_deployment", table_name="retrain_runs")
    op.drop_table("retrain_runs")
    op.drop_table("retrain_policies")
