"""features: keys that seal pii feature values in online stores

Revision ID: features_0002
Revises: features_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "features_0002"
down_revision = "features_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_sealing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_url", sa.String(length=512), nullable=False),
        sa.Column("view", sa.String(length=128), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_sealing_keys")),
        sa.UniqueConstraint(
            "store_url", "view", name=op.f("uq_feature_sealing_keys_store_url_view")
        ),
    )


def downgrade() -> None:
    op.drop_table("feature_sealing_keys")
