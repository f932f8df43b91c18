"""Drive sharing: the shared / unshared event kinds, insights_sharing_daily

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHECK = "ck_connector_file_events_event"
BEFORE = (
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
AFTER = (*BEFORE, "shared", "unshared")


def _condition(events: tuple[str, ...]) -> str:
    return "event IN (" + ", ".join(f"'{e}'" for e in events) + ")"


def _set_events(events: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        # NOT VALID, then VALIDATE: no exclusive lock held while the table is scanned, so syncs
        # keep writing events during the upgrade.
        op.execute(f"ALTER TABLE connector_file_events DROP CONSTRAINT {CHECK}")
        op.execute(
            f"ALTER TABLE connector_file_events ADD CONSTRAINT {CHECK} CHECK ({_condition(events)}) NOT VALID"
        )
        op.execute(f"ALTER TABLE connector_file_events VALIDATE CONSTRAINT {CHECK}")
        return
    # SQLite cannot alter a CHECK: the table is rebuilt (batch mode) without the old one and with
    # the new one.
    with op.batch_alter_table("connector_file_events", recreate="always") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), _condition(events))


def upgrade() -> None:
    _set_events(AFTER)
    op.create_table(
        "insights_sharing_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (
                "live_documents",
                "private",
                "shared_internal",
                "domain",
                "shared_external",
                "anyone_with_link",
                "public",
                "unclassified",
                "newly_shared_external",
                "newly_public",
                "unshared",
            )
        ),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "account_id", name="pk_insights_sharing_daily"),
    )
    op.create_index("ix_insights_sharing_daily_provider_day", "insights_sharing_daily", ["provider", "day"])


def downgrade() -> None:
    op.drop_table("insights_sharing_daily")
    op.execute("DELETE FROM connector_file_events WHERE event IN ('shared', 'unshared')")
    _set_events(BEFORE)
