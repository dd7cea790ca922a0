"""privacy: erasure certificates, erased artifacts and retention runs

Revision ID: privacy_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "privacy_0001"
down_revision = None
branch_labels = ("privacy",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "erasure_certificates",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("issued_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=256), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_certificates")),
    )
    op.create_index("ix_erasure_certificates_issued_at", "erasure_certificates", ["issued_at"])
    op.create_table(
        "erased_artifacts",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("erased_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_erased_artifacts")),
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ran_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("as_of", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("removed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    op.create_index("ix_retention_runs_ran_at", "retention_runs", ["ran_at"])


def downgrade() -> None:
    op.drop_index("ix_retention_runs_ran_at", table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_table("erased_artifacts")
    op.drop_index("ix_erasure_certificates_issued_at", table_name="erasure_certificates")
    op.drop_table("erasure_certificates")
