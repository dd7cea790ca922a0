"""tracking: an index on runs' start time, for the newest runs first

Revision ID: tracking_0002
Revises: tracking_0001

A search with no order (or ordered by start time) over 100,000 runs sorted every run
of the caller's projects for each page; with the index the planner walks it from the
newest and stops at the page's end.
"""

from __future__ import annotations

from alembic import op

revision = "tracking_0002"
down_revision = "tracking_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_start_time", "runs", ["start_time"])


def downgrade() -> None:
    op.drop_index("ix_runs_start_time", table_name="runs")
