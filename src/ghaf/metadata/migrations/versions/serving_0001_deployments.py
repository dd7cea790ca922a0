"""serving: deployment records

Revision ID: serving_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "serving_0001"
down_revision = None
branch_labels = ("serving",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "serving_deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("shadow", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_deployments")),
        sa.UniqueConstraint("name", name=op.f("uq_serving_deployments_name")),
    )


def downgrade() -> None:
    op.drop_table("serving_deployments")
