"""change probe: connector_sync_state.last_checked_at; push: connector_push_channels

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: instant on Postgres; NULL means "never found unchanged by a probe".
    op.add_column(
        "connector_sync_state", sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "connector_push_channels",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("corpus", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connector_accounts.id"],
            name="fk_connector_push_channels_account_id_connector_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_connector_push_channels"),
    )
    op.create_index("ix_connector_push_channels_account_id", "connector_push_channels", ["account_id"])
    op.create_index(
        "ix_connector_push_channels_provider_resource_id",
        "connector_push_channels",
        ["provider", "resource_id"],
    )
    op.create_index("ix_connector_push_channels_expires_at", "connector_push_channels", ["expires_at"])


def downgrade() -> None:
    op.drop_table("connector_push_channels")
    with op.batch_alter_table("connector_sync_state") as batch:
        batch.drop_column("last_checked_at")
