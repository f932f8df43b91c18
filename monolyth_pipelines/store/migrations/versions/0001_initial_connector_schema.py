"""initial connector schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# new_uuid renders per dialect (gen_random_uuid() on Postgres); it is a stable SQL function, safe
# to share with the live schema module.
from monolyth_pipelines.store.schema import new_uuid

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_accounts",
        sa.Column("id", sa.Uuid(), server_default=new_uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column(
            "token_json",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('connected', 'disconnected', 'error', 'pending')",
            name=op.f("ck_connector_accounts_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_accounts")),
    )
    op.create_index(op.f("ix_connector_accounts_owner_id"), "connector_accounts", ["owner_id"], unique=False)
    op.create_index(
        op.f("ix_connector_accounts_provider_status"),
        "connector_accounts",
        ["provider", "status"],
        unique=False,
    )
    op.create_table(
        "activity_log",
        sa.Column("id", sa.Uuid(), server_default=new_uuid(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connector_accounts.id"],
            name=op.f("fk_activity_log_account_id_connector_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_log")),
    )
    op.create_index(
        op.f("ix_activity_log_account_id_created_at"),
        "activity_log",
        ["account_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_activity_log_event_created_at"), "activity_log", ["event", "created_at"], unique=False
    )
    op.create_index(
        op.f("ix_activity_log_provider_created_at"), "activity_log", ["provider", "created_at"], unique=False
    )
    op.create_index(op.f("ix_activity_log_run_id"), "activity_log", ["run_id"], unique=False)
    op.create_table(
        "connector_files",
        sa.Column("id", sa.Uuid(), server_default=new_uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("mime", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column(
            "meta_json",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(deleted_at IS NULL) = (deleted_reason IS NULL)",
            name=op.f("ck_connector_files_tombstone_has_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connector_accounts.id"],
            name=op.f("fk_connector_files_account_id_connector_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_files")),
        sa.UniqueConstraint(
            "account_id", "external_id", name=op.f("uq_connector_files_account_id_external_id")
        ),
    )
    op.create_index(
        op.f("ix_connector_files_account_id_deleted_at"),
        "connector_files",
        ["account_id", "deleted_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_connector_files_account_id_modified_at"),
        "connector_files",
        ["account_id", "modified_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_connector_files_provider_modified_at"),
        "connector_files",
        ["provider", "modified_at"],
        unique=False,
    )
    op.create_table(
        "connector_jobs",
        sa.Column("id", sa.Uuid(), server_default=new_uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "meta_json",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed')", name=op.f("ck_connector_jobs_status")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_connector_jobs_attempts_non_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connector_accounts.id"],
            name=op.f("fk_connector_jobs_account_id_connector_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_jobs")),
    )
    op.create_index(
        op.f("ix_connector_jobs_account_id_created_at"),
        "connector_jobs",
        ["account_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_connector_jobs_kind_status_created_at"),
        "connector_jobs",
        ["kind", "status", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_connector_jobs_status_created_at"), "connector_jobs", ["status", "created_at"], unique=False
    )
    op.create_index(
        "uq_connector_jobs_one_open_per_account_kind",
        "connector_jobs",
        ["account_id", "kind"],
        unique=True,
        sqlite_where=sa.text("status IN ('pending', 'running')"),
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    op.create_table(
        "connector_sweep_seen",
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connector_accounts.id"],
            name=op.f("fk_connector_sweep_seen_account_id_connector_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "external_id", name=op.f("pk_connector_sweep_seen")),
    )
    op.create_table(
        "connector_sync_state",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("corpus", sa.Text(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("sweep_cursor", sa.Text(), nullable=True),
        sa.Column("sweep_page_token", sa.Text(), nullable=True),
        sa.Column("sweep_id", sa.Uuid(), nullable=True),
        sa.Column("sweep_reconcile", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_full_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connector_accounts.id"],
            name=op.f("fk_connector_sync_state_account_id_connector_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "corpus", name=op.f("pk_connector_sync_state")),
    )
    op.create_table(
        "vault_documents",
        sa.Column("id", sa.Uuid(), server_default=new_uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("parent_external_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("mime", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connector_accounts.id"],
            name=op.f("fk_vault_documents_account_id_connector_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_documents")),
        sa.UniqueConstraint(
            "owner_id", "source", "external_id", name=op.f("uq_vault_documents_owner_id_source_external_id")
        ),
    )
    op.create_index(op.f("ix_vault_documents_account_id"), "vault_documents", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_vault_documents_account_id"), table_name="vault_documents")
    op.drop_table("vault_documents")
    op.drop_table("connector_sync_state")
    op.drop_table("connector_sweep_seen")
    op.drop_index(
        "uq_connector_jobs_one_open_per_account_kind",
        table_name="connector_jobs",
        sqlite_where=sa.text("status IN ('pending', 'running')"),
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    op.drop_index(op.f("ix_connector_jobs_status_created_at"), table_name="connector_jobs")
    op.drop_index(op.f("ix_connector_jobs_kind_status_created_at"), table_name="connector_jobs")
    op.drop_index(op.f("ix_connector_jobs_account_id_created_at"), table_name="connector_jobs")
    op.drop_table("connector_jobs")
    op.drop_index(op.f("ix_connector_files_provider_modified_at"), table_name="connector_files")
    op.drop_index(op.f("ix_connector_files_account_id_modified_at"), table_name="connector_files")
    op.drop_index(op.f("ix_connector_files_account_id_deleted_at"), table_name="connector_files")
    op.drop_table("connector_files")
    op.drop_index(op.f("ix_activity_log_run_id"), table_name="activity_log")
    op.drop_index(op.f("ix_activity_log_provider_created_at"), table_name="activity_log")
    op.drop_index(op.f("ix_activity_log_event_created_at"), table_name="activity_log")
    op.drop_index(op.f("ix_activity_log_account_id_created_at"), table_name="activity_log")
    op.drop_table("activity_log")
    op.drop_index(op.f("ix_connector_accounts_provider_status"), table_name="connector_accounts")
    op.drop_index(op.f("ix_connector_accounts_owner_id"), table_name="connector_accounts")
    op.drop_table("connector_accounts")
