"""identity: principals, group members, API tokens (hashed), role bindings

Revision ID: identity_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "identity_0001"
down_revision = None
branch_labels = ("identity",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "identity_principals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_principals")),
        sa.UniqueConstraint("name", name=op.f("uq_identity_principals_name")),
    )
    op.create_table(
        "identity_group_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_name", sa.String(length=256), nullable=False),
        sa.Column("member", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_group_members")),
        sa.UniqueConstraint(
            "group_name", "member", name=op.f("uq_identity_group_members_group_name_member")
        ),
    )
    with op.batch_alter_table("identity_group_members", schema=None) as batch_op:
        batch_op.create_index("ix_identity_group_members_member", ["member"], unique=False)
    op.create_table(
        "identity_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=256), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_tokens")),
        sa.UniqueConstraint("token_id", name=op.f("uq_identity_tokens_token_id")),
    )
    with op.batch_alter_table("identity_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_identity_tokens_principal", ["principal"], unique=False)
    op.create_table(
        "identity_role_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("effect", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_role_bindings")),
        sa.UniqueConstraint(
            "subject",
            "role",
            "project",
            "effect",
            name=op.f("uq_identity_role_bindings_subject_role_project_effect"),
        ),
    )
    with op.batch_alter_table("identity_role_bindings", schema=None) as batch_op:
        batch_op.create_index("ix_identity_role_bindings_subject", ["subject"], unique=False)


def downgrade() -> None:
    op.drop_table("identity_role_bindings")
    op.drop_table("identity_tokens")
    op.drop_table("identity_group_members")
    op.drop_table("identity_principals")
