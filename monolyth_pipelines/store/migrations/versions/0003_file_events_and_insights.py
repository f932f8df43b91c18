"""connector_file_events (change history) and the Insights output tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)
EVENTS = (
    "added",
    "modified",
    "renamed",
    "moved_out_of_scope",
    "trashed",
    "deleted",
    "access_lost",
    "restored",
    "labelled",
    "unlabelled",
)


def upgrade() -> None:
    op.create_index(op.f("ix_connector_jobs_started_at"), "connector_jobs", ["started_at"], unique=False)
    op.create_index(op.f("ix_connector_jobs_finished_at"), "connector_jobs", ["finished_at"], unique=False)
    op.create_table(
        "connector_file_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("occurred_at", TS, nullable=True),
        sa.Column("observed_at", TS, nullable=False),
        sa.Column("changes", JSONB, nullable=False),
        sa.CheckConstraint(
            "event IN (" + ", ".join(f"'{e}'" for e in EVENTS) + ")",
            name=op.f("ck_connector_file_events_event"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_file_events")),
    )
    op.create_index(
        op.f("ix_connector_file_events_observed_at"),
        "connector_file_events",
        ["observed_at"],
        unique=False,
        postgresql_using="brin",
    )

    op.create_table(
        "insights_sync_runs_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("runs_started", sa.Integer(), nullable=False),
        sa.Column("runs_completed", sa.Integer(), nullable=False),
        sa.Column("runs_failed", sa.Integer(), nullable=False),
        sa.Column("failure_rate", sa.Float(), nullable=True),
        sa.Column("duration_p50_ms", sa.BigInteger(), nullable=True),
        sa.Column("duration_p95_ms", sa.BigInteger(), nullable=True),
        sa.Column("duration_max_ms", sa.BigInteger(), nullable=True),
        sa.Column("items_seen", sa.BigInteger(), nullable=False),
        sa.Column("items_inserted", sa.BigInteger(), nullable=False),
        sa.Column("items_updated", sa.BigInteger(), nullable=False),
        sa.Column("items_tombstoned", sa.BigInteger(), nullable=False),
        sa.Column("api_calls", sa.BigInteger(), nullable=False),
        sa.Column("failures_by_code", JSONB, nullable=False),
        sa.Column("built_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("day", "provider", "kind", name=op.f("pk_insights_sync_runs_daily")),
    )
    op.create_index(
        op.f("ix_insights_sync_runs_daily_provider_day"), "insights_sync_runs_daily", ["provider", "day"]
    )

    op.create_table(
        "insights_account_usage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("runs_started", sa.Integer(), nullable=False),
        sa.Column("runs_completed", sa.Integer(), nullable=False),
        sa.Column("runs_failed", sa.Integer(), nullable=False),
        sa.Column("live_items", sa.BigInteger(), nullable=False),
        sa.Column("live_bytes", sa.BigInteger(), nullable=False),
        sa.Column("items_added", sa.BigInteger(), nullable=False),
        sa.Column("items_modified", sa.BigInteger(), nullable=False),
        sa.Column("items_removed", sa.BigInteger(), nullable=False),
        sa.Column("vault_imports", sa.BigInteger(), nullable=False),
        sa.Column("minutes_since_success", sa.BigInteger(), nullable=True),
        sa.Column("built_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("day", "account_id", name=op.f("pk_insights_account_usage_daily")),
    )
    op.create_index(
        op.f("ix_insights_account_usage_daily_provider_day"),
        "insights_account_usage_daily",
        ["provider", "day"],
    )
    op.create_index(
        op.f("ix_insights_account_usage_daily_account_id_day"),
        "insights_account_usage_daily",
        ["account_id", "day"],
    )

    op.create_table(
        "insights_document_activity_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("mime", sa.Text(), nullable=True),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("events", JSONB, nullable=False),
        sa.Column("first_seen_at", TS, nullable=True),
        sa.Column("last_modified_at", TS, nullable=True),
        sa.Column("built_at", TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "account_id", "external_id", name=op.f("pk_insights_document_activity_daily")
        ),
    )
    op.create_index(
        op.f("ix_insights_document_activity_daily_provider_day"),
        "insights_document_activity_daily",
        ["provider", "day"],
    )
    op.create_index(
        op.f("ix_insights_document_activity_daily_account_id_external_id_day"),
        "insights_document_activity_daily",
        ["account_id", "external_id", "day"],
    )


def downgrade() -> None:
    op.drop_table("insights_document_activity_daily")
    op.drop_table("insights_account_usage_daily")
    op.drop_table("insights_sync_runs_daily")
    op.drop_table("connector_file_events")
    op.drop_index(op.f("ix_connector_jobs_finished_at"), table_name="connector_jobs")
    op.drop_index(op.f("ix_connector_jobs_started_at"), table_name="connector_jobs")
