"""serving: a deployment's experiment routing, and reported outcomes

Revision ID: serving_0002
Revises: serving_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "serving_0002"
down_revision = "serving_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("serving_deployments") as batch:
        batch.add_column(sa.Column("routing", sa.Text(), nullable=True))
    op.create_table(
        "serving_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=256), nullable=True),
        sa.Column("unit", sa.String(length=256), nullable=True),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("ts", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("reported_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_outcomes")),
    )
    op.create_index(
        "ix_serving_outcomes_model_request", "serving_outcomes", ["model", "request_id"]
    )
    op.create_index("ix_serving_outcomes_model_unit", "serving_outcomes", ["model", "unit"])


def downgrade() -> None:
    op.drop_index("ix_serving_outcomes_model_unit", table_name="serving_outcomes")
    op.drop_index("ix_serving_outcomes_model_request", table_name="serving_outcomes")
    op.drop_table("serving_outcomes")
    with op.batch_alter_table("serving_deployments") as batch:
        batch.drop_column("routing")
