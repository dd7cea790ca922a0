"""shipping: each audit sink's cursor (last acknowledged record) and delivery state

Revision ID: shipping_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "shipping_0001"
down_revision = None
branch_labels = ("shipping",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "audit_sink_cursors",
        sa.Column("sink", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("shipped", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_shipped_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sink", name=op.f("pk_audit_sink_cursors")),
    )


def downgrade() -> None:
    op.drop_table("audit_sink_cursors")
