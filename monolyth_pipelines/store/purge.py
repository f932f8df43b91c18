"""Deleting everything the connector stored for one account (``accounts disconnect --purge``)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from monolyth_pipelines.store.schema import (
    connector_files,
    connector_jobs,
    connector_sweep_seen,
    connector_sync_state,
    vault_documents,
)

# Tables other branches add (issue 11's file events); deleted from when present.
OPTIONAL_TABLES = ("connector_file_events",)


def purge_account_data(conn: sa.Connection, account_id: uuid.UUID) -> dict[str, int]:
    """Delete the account's items, Vault documents, cursors and jobs; rows deleted per table.

    The account row (disconnected, without tokens) and activity_log stay: the audit trail of
    who connected and disconnected what is not the account's data.
    """
    deleted: dict[str, int] = {}
    present = set(sa.inspect(conn).get_table_names())
    for name in OPTIONAL_TABLES:
        if name in present:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            deleted[name] = conn.execute(table.delete().where(table.c.account_id == account_id)).rowcount
    owned = (vault_documents, connector_files, connector_sweep_seen, connector_sync_state, connector_jobs)
    for table in owned:
        deleted[table.name] = conn.execute(table.delete().where(table.c.account_id == account_id)).rowcount
    return deleted
