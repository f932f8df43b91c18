"""vault_documents: one document per account (unique on account_id, source, external_id)

Two accounts of one owner sharing a Drive file kept one document, recorded under the first
account; the other account never imported it, and the first account losing the file marked it
deleted for both. The old key (owner_id, source, external_id) is stricter than the new one, so
existing rows satisfy it as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD = "uq_vault_documents_owner_id_source_external_id"
NEW = "uq_vault_documents_account_id_source_external_id"


def upgrade() -> None:
    with op.batch_alter_table("vault_documents") as batch:
        batch.drop_constraint(OLD, type_="unique")
        batch.create_unique_constraint(NEW, ["account_id", "source", "external_id"])


def downgrade() -> None:
    # Fails if two accounts of one owner now hold the same item: keep one document first.
    with op.batch_alter_table("vault_documents") as batch:
        batch.drop_constraint(NEW, type_="unique")
        batch.create_unique_constraint(OLD, ["owner_id", "source", "external_id"])
