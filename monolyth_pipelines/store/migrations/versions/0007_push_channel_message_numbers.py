"""push: connector_push_channels.last_message_number (Drive replays and reordering)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: instant on Postgres; NULL means "no message seen yet".
    op.add_column("connector_push_channels", sa.Column("last_message_number", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connector_push_channels") as batch:
        batch.drop_column("last_message_number")
