"""The one source of truth for the connector schema.

Alembic migrations (``store/migrations``) are checked against this MetaData by the test suite on
SQLite and Postgres, and ``sql/schema.sql`` is generated from it (``monolyth-connectors db sql``),
so the three cannot drift. Portable types map to the spec's Postgres types: uuid, jsonb,
timestamptz, int, bigint, text.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

import sqlalchemy as sa

from monolyth_pipelines.domain.permissions import VISIBILITY_ORDER

# Re-exported: the migrations and the store name them through this module.
from monolyth_pipelines.store.enums import (  # noqa: F401
    AccountStatus,
    AccountStatusReason,
    FileEventKind,
    JobKind,
    JobStatus,
    Provider,
)
from monolyth_pipelines.store.types import BIGID, JSONB, NOW, TIMESTAMPTZ, UUID, new_uuid
from monolyth_pipelines.store.types import UTCDateTime as UTCDateTime


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

connector_accounts = sa.Table(
    "connector_accounts",
    metadata,
    sa.Column("id", UUID, primary_key=True, default=uuid.uuid4, server_default=new_uuid()),
    sa.Column("owner_id", UUID, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default=AccountStatus.PENDING.value),
    # Fernet ciphertext in a JSON envelope {"enc": "fernet", "v": ...}: see store/token_crypto.py.
    sa.Column("token_json", JSONB),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    # Beyond the spec: the Google identity behind the grant, so connecting the same Google account
    # again updates this row (Drive: the user's permissionId; Gmail: the address, lower-cased).
    sa.Column("external_user_id", sa.Text),
    sa.Column("external_email", sa.Text),
    # Why the account is in error: machine-readable (needs_reauth, missing_scopes, probe_failed)
    # and a sentence for a person. Both null while connected.
    sa.Column("status_reason", sa.Text),
    sa.Column("status_message", sa.Text),
    sa.Column("domain_id", UUID),  # a Workspace domain's account; no FK: SQLite adds one by rebuilding
    sa.CheckConstraint(_in("status", AccountStatus), name="status"),
    sa.Index(None, "provider", "status"),
    sa.Index(None, "domain_id"),
    sa.Index(None, "owner_id", "provider", "external_user_id", unique=True),
    sa.Index(None, "owner_id"),
)

connector_jobs = sa.Table(
    "connector_jobs",
    metadata,
    sa.Column("id", UUID, primary_key=True, default=uuid.uuid4, server_default=new_uuid()),
    sa.Column("account_id", UUID, sa.ForeignKey("connector_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default=JobStatus.PENDING.value),
    sa.Column("started_at", TIMESTAMPTZ),
    sa.Column("finished_at", TIMESTAMPTZ),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("meta_json", JSONB),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    # Beyond the spec: the Dagster run that holds the job, so failure sensors and the reaper can
    # find the row from a run and tell a live run from a dead one.
    sa.Column("run_id", sa.Text),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.CheckConstraint(_in("status", JobStatus), name="status"),
    sa.CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    sa.Index(None, "account_id", "created_at"),
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "kind", "status", "created_at"),
    # One open job per account and kind: two "Sync now" clicks coalesce into one run.
    sa.Index(
        "uq_connector_jobs_one_open_per_account_kind",
        "account_id",
        "kind",
        unique=True,
        sqlite_where=sa.text("status IN ('pending', 'running')"),
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    ),
)

connector_files = sa.Table(
    "connector_files",
    metadata,
    sa.Column("id", UUID, primary_key=True, default=uuid.uuid4, server_default=new_uuid()),
    sa.Column("account_id", UUID, sa.ForeignKey("connector_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("mime", sa.Text),
    sa.Column("size", sa.BigInteger),
    sa.Column("modified_at", TIMESTAMPTZ),
    sa.Column("url", sa.Text),
    sa.Column("meta_json", JSONB),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    # Beyond the spec: change detection and tombstones. A row that leaves the account keeps its
    # history; deleted_at/deleted_reason say when and why, and a later sighting clears them.
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("deleted_at", TIMESTAMPTZ),
    sa.Column("deleted_reason", sa.Text),
    sa.UniqueConstraint("account_id", "external_id"),
    sa.CheckConstraint("(deleted_at IS NULL) = (deleted_reason IS NULL)", name="tombstone_has_reason"),
    sa.Index(None, "provider", "modified_at"),
    sa.Index(None, "account_id", "modified_at"),
    sa.Index(None, "account_id", "deleted_at"),
)

activity_log = sa.Table(
    "activity_log",
    metadata,
    sa.Column("id", UUID, primary_key=True, default=uuid.uuid4, server_default=new_uuid()),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("owner_id", UUID),
    sa.Column("account_id", UUID, sa.ForeignKey("connector_accounts.id", ondelete="SET NULL")),
    sa.Column("provider", sa.Text),
    sa.Column("run_id", sa.Text),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.Index(None, "event", "created_at"),
    sa.Index(None, "account_id", "created_at"),
    sa.Index(None, "provider", "created_at"),
    sa.Index(None, "run_id"),
)

vault_documents = sa.Table(
    "vault_documents",
    metadata,
    sa.Column("id", UUID, primary_key=True, default=uuid.uuid4, server_default=new_uuid()),
    sa.Column("owner_id", UUID, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("account_id", UUID, sa.ForeignKey("connector_accounts.id", ondelete="SET NULL")),
    # For a Gmail attachment: the message it came from (connector_files.external_id).
    sa.Column("parent_external_id", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("mime", sa.Text),
    sa.Column("size", sa.BigInteger),
    sa.Column("sha256", sa.Text),
    sa.Column("content", sa.LargeBinary),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    # Follows the source row in connector_files: content whose item left the account (deleted,
    # access lost, ...) is marked with the same reason, and unmarked when the item comes back.
    sa.Column("deleted_at", TIMESTAMPTZ),
    sa.Column("deleted_reason", sa.Text),
    # One document per account: two accounts of one owner sharing a file each keep theirs, so
    # one losing the file marks only its own document deleted (migration 0005).
    sa.UniqueConstraint("account_id", "source", "external_id"),
    sa.Index(None, "account_id"),
)

connector_sync_state = sa.Table(
    "connector_sync_state",
    metadata,
    sa.Column(
        "account_id", UUID, sa.ForeignKey("connector_accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    # 'drive' (My Drive), 'drive:<driveId>' (a shared drive), 'gmail' (the mailbox).
    sa.Column("corpus", sa.Text, primary_key=True),
    # The committed incremental cursor: Drive start page token or Gmail history id.
    sa.Column("cursor", sa.Text),
    # A full sweep in progress: the cursor captured before it started, the next listing page and
    # whether it must reconcile (tombstone what it did not see) when it ends.
    sa.Column("sweep_cursor", sa.Text),
    sa.Column("sweep_page_token", sa.Text),
    sa.Column("sweep_id", UUID),
    sa.Column("sweep_reconcile", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_full_sync_at", TIMESTAMPTZ),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    # When the change probe last found this corpus unchanged at Google (no run needed). Freshness
    # of a corpus is the later of this and the finish of the account's last completed job.
    sa.Column("last_checked_at", TIMESTAMPTZ),
)

# Ids seen by a reconciling full sweep, written page by page so a sweep survives a crash and the
# reconcile runs in the database instead of holding an account's ids in memory.
connector_sweep_seen = sa.Table(
    "connector_sweep_seen",
    metadata,
    sa.Column("sweep_id", UUID, primary_key=True),
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("account_id", UUID, sa.ForeignKey("connector_accounts.id", ondelete="CASCADE"), nullable=False),
)


# The change history behind "per document over time": connector_files keeps only the latest
# state. Written by the store functions that change connector_files, in the same transaction;
# an item that did not change writes nothing.
connector_file_events = sa.Table(
    "connector_file_events",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    # No foreign keys and one cheap index: on the bench, an FK and an (account_id, external_id)
    # index each added a third to the cost of a page's write (docs/insights.md).
    sa.Column("account_id", UUID, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("job_id", UUID),
    sa.Column("event", sa.Text, nullable=False),
    # For an item that left: connector_files.deleted_reason (trashed, too_large, left_label, ...).
    sa.Column("reason", sa.Text),
    # The item's own modified time where Google gives one; NULL for removals (Google gives none).
    sa.Column("occurred_at", TIMESTAMPTZ),
    sa.Column("observed_at", TIMESTAMPTZ, nullable=False),
    # {"title"|"size"|"modified_at": {"old": .., "new": ..}} for each of those that changed.
    sa.Column("changes", JSONB, nullable=False),
    sa.CheckConstraint(_in("event", FileEventKind), name="event"),
    # BRIN on Postgres: rows arrive in observed_at order, so day ranges stay cheap to find while
    # the index costs an insert next to nothing.
    sa.Index(None, "observed_at", postgresql_using="brin"),
)

# --- Insights output tables: one row per day (UTC) and key, rebuilt a day at a time. ----------

insights_sync_runs_daily = sa.Table(
    "insights_sync_runs_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("runs_started", sa.Integer, nullable=False),
    sa.Column("runs_completed", sa.Integer, nullable=False),
    sa.Column("runs_failed", sa.Integer, nullable=False),
    sa.Column("failure_rate", sa.Float),
    sa.Column("duration_p50_ms", sa.BigInteger),
    sa.Column("duration_p95_ms", sa.BigInteger),
    sa.Column("duration_max_ms", sa.BigInteger),
    sa.Column("items_seen", sa.BigInteger, nullable=False),
    sa.Column("items_inserted", sa.BigInteger, nullable=False),
    sa.Column("items_updated", sa.BigInteger, nullable=False),
    sa.Column("items_tombstoned", sa.BigInteger, nullable=False),
    sa.Column("api_calls", sa.BigInteger, nullable=False),
    sa.Column("failures_by_code", JSONB, nullable=False),
    sa.Column("built_at", TIMESTAMPTZ, nullable=False),
    # Jobs closed without a sync of their own (refused by the settings or the mass-tombstone
    # guard, never started, disconnected): not in runs_failed nor in failure_rate.
    sa.Column("runs_refused", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "provider", "day"),
)

insights_account_usage_daily = sa.Table(
    "insights_account_usage_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("account_id", UUID, primary_key=True),
    sa.Column("owner_id", UUID, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("runs_started", sa.Integer, nullable=False),
    sa.Column("runs_completed", sa.Integer, nullable=False),
    sa.Column("runs_failed", sa.Integer, nullable=False),
    sa.Column("live_items", sa.BigInteger, nullable=False),
    sa.Column("live_bytes", sa.BigInteger, nullable=False),
    sa.Column("items_added", sa.BigInteger, nullable=False),
    sa.Column("items_modified", sa.BigInteger, nullable=False),
    sa.Column("items_removed", sa.BigInteger, nullable=False),
    sa.Column("vault_imports", sa.BigInteger, nullable=False),
    sa.Column("minutes_since_success", sa.BigInteger),
    sa.Column("built_at", TIMESTAMPTZ, nullable=False),
    sa.Column("runs_refused", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "provider", "day"),
    sa.Index(None, "account_id", "day"),
)

insights_document_activity_daily = sa.Table(
    "insights_document_activity_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("account_id", UUID, primary_key=True),
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("mime", sa.Text),
    sa.Column("changes", sa.Integer, nullable=False),
    # {"modified": 2, "renamed": 1, ...}: the day's events of this document by kind.
    sa.Column("events", JSONB, nullable=False),
    sa.Column("first_seen_at", TIMESTAMPTZ),
    sa.Column("last_modified_at", TIMESTAMPTZ),
    sa.Column("built_at", TIMESTAMPTZ, nullable=False),
    sa.Index(None, "provider", "day"),
    sa.Index(None, "account_id", "external_id", "day"),
)

# Per day and Drive account: live documents by visibility class at the day's end, sharing changes.
SHARING_CHANGES = ("newly_shared_external", "newly_public", "unshared")
insights_sharing_daily = sa.Table(
    "insights_sharing_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("account_id", UUID, primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    # The classes, "unclassified" (no class known), then the day's changes: docs/insights.md.
    *(
        sa.Column(name, sa.BigInteger, nullable=False)
        for name in ("live_documents", *VISIBILITY_ORDER, "unclassified", *SHARING_CHANGES)
    ),
    sa.Column("built_at", TIMESTAMPTZ, nullable=False),
    sa.Index(None, "provider", "day"),
)

# Insights reads one day of runs by when they started and finished.
sa.Index("ix_connector_jobs_started_at", connector_jobs.c.started_at)
sa.Index("ix_connector_jobs_finished_at", connector_jobs.c.finished_at)


# Push notification channels: Drive changes.watch (one per corpus) and Gmail users.watch (one per
# mailbox). Only a hash of a Drive channel's token is kept; the receiver hashes what it is sent.
connector_push_channels = sa.Table(
    "connector_push_channels",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # Drive: the channel id we chose; Gmail: ours too
    sa.Column("account_id", UUID, sa.ForeignKey("connector_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("corpus", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text),  # sha256 hex of the Drive channel token; NULL for Gmail
    # Drive: the resourceId Google returned (channels.stop needs it). Gmail: the mailbox address,
    # which is how a Pub/Sub notification names its account.
    sa.Column("resource_id", sa.Text, nullable=False),
    sa.Column("expires_at", TIMESTAMPTZ, nullable=False),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.Column("last_message_at", TIMESTAMPTZ),
    # Drive: the highest X-Goog-Message-Number seen on this channel; one at or below it is a
    # replay or arrived out of order. NULL: no message yet (and always for Gmail).
    sa.Column("last_message_number", sa.BigInteger),
    sa.Index(None, "account_id"),
    sa.Index(None, "provider", "resource_id"),
    sa.Index(None, "expires_at"),
)


# A Workspace domain (domain-wide delegation): its service-account key, encrypted, stored once.
connector_domains = sa.Table(
    "connector_domains",
    metadata,
    sa.Column("id", UUID, primary_key=True, default=uuid.uuid4, server_default=new_uuid()),
    sa.Column("owner_id", UUID, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),  # of the admin address, lower-cased
    sa.Column("admin_email", sa.Text, nullable=False),
    sa.Column("client_id", sa.Text, nullable=False),  # the numeric id the Admin console asks for
    sa.Column("client_email", sa.Text, nullable=False),
    sa.Column("key_json", JSONB, nullable=False),
    sa.Column("users_query", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default=AccountStatus.CONNECTED.value),
    sa.Column("status_reason", sa.Text),
    sa.Column("status_message", sa.Text),
    sa.Column("listed_at", TIMESTAMPTZ),  # the last complete directory listing
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    sa.CheckConstraint(_in("status", AccountStatus), name="status"),
    sa.UniqueConstraint("owner_id", "provider", "domain"),
)
