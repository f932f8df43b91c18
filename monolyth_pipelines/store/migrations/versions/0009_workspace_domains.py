"""Workspace domains: connector_domains (the service-account key, once), connector_accounts.domain_id

Revision ID: 0009
Revises: 0007 (the head of main when this branch merged it; the coordinator sets the real predecessor)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from monolyth_pipelines.store.types import new_uuid

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_domains",
        sa.Column("id", sa.Uuid(), server_default=new_uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("admin_email", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_email", sa.Text(), nullable=False),
        sa.Column(
            "key_json",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("users_query", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="connected", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('connected', 'disconnected', 'error', 'pending')",
            name=op.f("ck_connector_domains_status"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_connector_domains"),
        sa.UniqueConstraint(
            "owner_id", "provider", "domain", name="uq_connector_domains_owner_id_provider_domain"
        ),
    )
    # Plain ADD COLUMN, never batch mode: on SQLite batch mode rebuilds connector_accounts, and
    # dropping the old table would cascade into every row that references it.
    op.add_column("connector_accounts", sa.Column("domain_id", sa.Uuid(), nullable=True))
    op.create_index("ix_connector_accounts_domain_id", "connector_accounts", ["domain_id"])


def downgrade() -> None:
    op.drop_index("ix_connector_accounts_domain_id", "connector_accounts")
    with op.batch_alter_table("connector_accounts") as batch:
        batch.drop_column("domain_id")
    op.drop_table("connector_domains")
