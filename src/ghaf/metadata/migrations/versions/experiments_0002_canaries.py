"""experiments: canaries and their decisions

Revision ID: experiments_0002
Revises: experiments_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "experiments_0002"
down_revision = "experiments_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=256), nullable=False),
        sa.Column("champion", sa.String(length=300), nullable=False),
        sa.Column("candidate", sa.String(length=300), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("baseline", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("step_started_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canaries")),
        sa.UniqueConstraint("name", name=op.f("uq_canaries_name")),
    )
    op.create_index(op.f("ix_canaries_deployment"), "canaries", ["deployment"], unique=False)
    op.create_table(
        "canary_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("canary_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("window_start", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("window_end", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_decisions")),
        sa.UniqueConstraint("canary_id", "seq", name=op.f("uq_canary_decisions_canary_id_seq")),
    )
    op.create_index(
        op.f("ix_canary_decisions_canary_id"), "canary_decisions", ["canary_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_canary_decisions_canary_id"), table_name="canary_decisions")
    op.drop_table("canary_decisions")
    op.drop_index(op.f("ix_canaries_deployment"), table_name="canaries")
    op.drop_table("canaries")
