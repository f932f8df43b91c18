"""insights: runs_refused (jobs refused or never started) apart from runs_failed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("insights_sync_runs_daily", "insights_account_usage_daily")


def upgrade() -> None:
    # A constant default: instant on Postgres (no rewrite). Days built before keep 0 until rebuilt.
    for table in TABLES:
        op.add_column(table, sa.Column("runs_refused", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("runs_refused")
