"""features: versioned definitions and materializations

Revision ID: features_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "features_0001"
down_revision = None
branch_labels = ("features",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_definitions")),
        sa.UniqueConstraint(
            "kind", "name", "version", name=op.f("uq_feature_definitions_kind_name_version")
        ),
    )
    with op.batch_alter_table("feature_definitions", schema=None) as batch_op:
        batch_op.create_index("ix_feature_definitions_name", ["name"], unique=False)
    op.create_table(
        "feature_materializations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=128), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("store_url", sa.String(length=512), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("start", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("watermark", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_materializations")),
    )
    with op.batch_alter_table("feature_materializations", schema=None) as batch_op:
        batch_op.create_index("ix_feature_materializations_view", ["view"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feature_materializations", schema=None) as batch_op:
        batch_op.drop_index("ix_feature_materializations_view")
    op.drop_table("feature_materializations")
    with op.batch_alter_table("feature_definitions", schema=None) as batch_op:
        batch_op.drop_index("ix_feature_definitions_name")
    op.drop_table("feature_definitions")
