"""registry: gate policies (versioned YAML), their attachments, verdicts per model version

Revision ID: registry_0002
Revises: registry_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghaf.metadata.base

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_policies")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_gate_policies_name_version")),
    )
    with op.batch_alter_table("gate_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gate_policies_name"), ["name"], unique=False)
    op.create_table(
        "gate_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=128), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_attachments")),
        sa.UniqueConstraint(
            "policy", "kind", "target", name=op.f("uq_gate_attachments_policy_kind_target")
        ),
    )
    with op.batch_alter_table("gate_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gate_attachments_target"), ["target"], unique=False)
    op.create_table(
        "gate_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=128), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=128), nullable=False),
        sa.Column("evaluated_by", sa.String(length=256), nullable=False),
        sa.Column("evaluated_at", ghaf.metadata.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_gate_verdicts_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_verdicts")),
    )
    with op.batch_alter_table("gate_verdicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gate_verdicts_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("gate_verdicts")
    op.drop_table("gate_attachments")
    op.drop_table("gate_policies")
