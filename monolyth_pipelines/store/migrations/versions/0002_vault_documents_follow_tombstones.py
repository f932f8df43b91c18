"""vault_documents follow the tombstones of their source rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without defaults: instant on Postgres, and existing rows stay live.
    op.add_column("vault_documents", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("vault_documents", sa.Column("deleted_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vault_documents") as batch:
        batch.drop_column("deleted_reason")
        batch.drop_column("deleted_at")
