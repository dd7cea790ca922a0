"""foundation: the home's owner (the OS account fixed at ghaf init)

Revision ID: foundation_0002
Revises: foundation_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "foundation_0002"
down_revision = "foundation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("home_info") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("home_info") as batch:
        batch.drop_column("owner")
