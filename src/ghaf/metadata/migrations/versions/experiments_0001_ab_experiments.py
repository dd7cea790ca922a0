"""experiments: A/B experiments over deployments

Revision ID: experiments_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "experiments_0001"
down_revision = None
branch_labels = ("experiments",)
depends_on = "serving_0002"


def upgrade() -> None:
    op.create_table(
        "ab_experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=256), nullable=False),
        sa.Column("variants", sa.Text(), nullable=False),
        sa.Column("control", sa.String(length=300), nullable=False),
        sa.Column("shadows", sa.Text(), nullable=False),
        sa.Column("holdout", sa.Float(), nullable=False),
        sa.Column("salt", sa.String(length=128), nullable=False),
        sa.Column("unit_kind", sa.String(length=16), nullable=False),
        sa.Column("unit_name", sa.String(length=128), nullable=False),
        sa.Column("goal", sa.String(length=128), nullable=False),
        sa.Column("guardrails", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_ab_experiments_name")),
    )
    op.create_index(
        op.f("ix_ab_experiments_deployment"), "ab_experiments", ["deployment"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ab_experiments_deployment"), table_name="ab_experiments")
    op.drop_table("ab_experiments")
