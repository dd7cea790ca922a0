"""models: code policies (the modules custom model code may import, per project)

Revision ID: models_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "models_0001"
down_revision = None
branch_labels = ("models",)
depends_on = "registry_0001"


def upgrade() -> None:
    op.create_table(
        "model_code_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("modules", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_code_policies")),
        sa.UniqueConstraint(
            "project", "version", name=op.f("uq_model_code_policies_project_version")
        ),
    )
    op.create_index(
        op.f("ix_model_code_policies_project"), "model_code_policies", ["project"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_model_code_policies_project"), table_name="model_code_policies")
    op.drop_table("model_code_policies")
