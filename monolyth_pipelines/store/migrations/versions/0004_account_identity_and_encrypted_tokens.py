"""connector_accounts: Google identity, status reason, tokens encrypted at rest

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Encrypting the existing rows needs the key ring (store/token_crypto.py): ``MONOLYTH_TOKEN_KEYS``,
or on the embedded SQLite database the local key file, made on first use. On Postgres without
``MONOLYTH_TOKEN_KEYS`` the upgrade refuses only when there are plain tokens to encrypt; it
then changes nothing (one transaction) and says how to make a key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monolyth_pipelines.store import token_crypto

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade() -> None:
    # Plain ADD COLUMN and an index, never batch mode: on SQLite batch mode rebuilds the table, and
    # dropping the old connector_accounts would cascade into every row that references it.
    for name in ("external_user_id", "external_email", "status_reason", "status_message"):
        op.add_column("connector_accounts", sa.Column(name, sa.Text(), nullable=True))
    op.create_index(
        "ix_connector_accounts_owner_id_provider_external_user_id",
        "connector_accounts",
        ["owner_id", "provider", "external_user_id"],
        unique=True,
    )
    _encrypt_existing_rows(op.get_bind())


def _encrypt_existing_rows(conn: sa.Connection) -> None:
    table = sa.table("connector_accounts", sa.column("id"), sa.column("token_json", sa.JSON))
    rows = conn.execute(sa.select(table.c.id, table.c.token_json).where(table.c.token_json.isnot(None)))
    ring = None
    while batch := rows.fetchmany(_BATCH):
        plain = [r for r in batch if not token_crypto.is_encrypted(r.token_json)]
        if not plain:
            continue
        ring = ring or token_crypto.key_ring(conn.dialect.name)
        conn.execute(
            table.update().where(table.c.id == sa.bindparam("row_id")).values(token_json=sa.bindparam("enc")),
            [{"row_id": r.id, "enc": token_crypto.encrypt(ring, r.token_json)} for r in plain],
        )


def downgrade() -> None:
    # Tokens stay encrypted: decrypting them back into the clear is never done implicitly.
    op.drop_index("ix_connector_accounts_owner_id_provider_external_user_id", "connector_accounts")
    for name in ("status_message", "status_reason", "external_email", "external_user_id"):
        op.drop_column("connector_accounts", name)
