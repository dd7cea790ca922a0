"""data_parts: the Parquet parts an appended dataset version adds to its base's

Revision ID: data_parts_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "data_parts_0001"
down_revision = None
branch_labels = ("data_parts",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "data_version_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version_parts")),
        sa.UniqueConstraint(
            "name", "version", "position", name=op.f("uq_data_version_parts_name_version_position")
        ),
    )
    with op.batch_alter_table("data_version_parts", schema=None) as batch_op:
        batch_op.create_index("ix_data_version_parts_name", ["name"], unique=False)
        batch_op.create_index("ix_data_version_parts_digest", ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("data_version_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_data_version_parts_digest")
        batch_op.drop_index("ix_data_version_parts_name")
    op.drop_table("data_version_parts")
