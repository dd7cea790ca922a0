"""ui: one-time login links of the web UI (hashed)

Revision ID: ui_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "ui_0001"
down_revision = None
branch_labels = ("ui",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "ui_login_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.String(length=32), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=256), nullable=False),
        sa.Column("credential", sa.String(length=128), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_from", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_login_links")),
        sa.UniqueConstraint("link_id", name=op.f("uq_ui_login_links_link_id")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_ui_login_links_secret_sha256")),
    )


def downgrade() -> None:
    op.drop_table("ui_login_links")
