"""data: dataset versions, stream keys, transforms, lineage edges

Revision ID: data_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "data_0001"
down_revision = None
branch_labels = ("data",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "data_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("schema_b64", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("column_tags", sa.Text(), nullable=False),
        sa.Column("residency", sa.String(length=64), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("validation", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_data_versions_name_version")),
    )
    with op.batch_alter_table("data_versions", schema=None) as batch_op:
        batch_op.create_index("ix_data_versions_name", ["name"], unique=False)
    op.create_table(
        "data_stream_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_stream_keys")),
        sa.UniqueConstraint("dataset", "key", name=op.f("uq_data_stream_keys_dataset_key")),
    )
    op.create_table(
        "data_transforms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("output", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_transforms")),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("src", sa.String(length=300), nullable=False),
        sa.Column("dst", sa.String(length=300), nullable=False),
        sa.Column("relation", sa.String(length=64), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_edges")),
        sa.UniqueConstraint(
            "src", "dst", "relation", name=op.f("uq_lineage_edges_src_dst_relation")
        ),
    )
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.create_index("ix_lineage_edges_src", ["src"], unique=False)
        batch_op.create_index("ix_lineage_edges_dst", ["dst"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_edges_dst")
        batch_op.drop_index("ix_lineage_edges_src")
    op.drop_table("lineage_edges")
    op.drop_table("data_transforms")
    op.drop_table("data_stream_keys")
    with op.batch_alter_table("data_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_data_versions_name")
    op.drop_table("data_versions")
