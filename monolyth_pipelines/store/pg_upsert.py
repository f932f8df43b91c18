"""connector_files on Postgres: a page of rows written, and its events logged, by one statement.

The page travels as one JSON document that Postgres unpacks with ``jsonb_to_recordset``: the
rows are serialised by orjson in C, where COPY or bound parameters cost a Python call per value,
and the statement is prepared once per connection (psycopg prepares repeated statements). The
statement reads the old rows, upserts, logs what it wrote and reports it, all on one snapshot.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.dialects import postgresql

from monolyth_pipelines.store import file_events
from monolyth_pipelines.store.file_rows import ROW_FIELDS, UPDATED_ON_CONFLICT, UpsertCounts
from monolyth_pipelines.store.schema import connector_files

# The columns every row of a page shares, as statement parameters; the others come from the rows.
_SHARED = {
    "id": "gen_random_uuid()",
    "account_id": "%(account_id)s::uuid",
    "provider": "%(provider)s::text",
    "created_at": "%(now)s::timestamptz",
    "updated_at": "%(now)s::timestamptz",
    "deleted_at": "NULL::timestamptz",
    "deleted_reason": "NULL::text",
}
# A row's ``meta`` (a JSON object) is the column meta_json; the other row fields share their
# column's name.
_COLUMN_OF_FIELD = {"meta": "meta_json"}


def _stage() -> str:
    """SELECT .. FROM jsonb_to_recordset(rows): the page as connector_files rows."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    field_of_column = {_COLUMN_OF_FIELD.get(name, name): name for name in ROW_FIELDS}
    fields = [
        f"{name} {connector_files.c[_COLUMN_OF_FIELD.get(name, name)].type.compile(dialect=dialect)}"
        for name in ROW_FIELDS
    ]
    fields.append("added_changes jsonb")  # not a column: the event of a new row (file_rows.row)
    select = ["r.added_changes"]
    for column in connector_files.c:
        if column.name in _SHARED:
            select.append(f"{_SHARED[column.name]} AS {column.name}")
        elif column.name in field_of_column:
            select.append(f"r.{field_of_column[column.name]} AS {column.name}")
        else:
            raise RuntimeError(f"connector_files.{column.name}: say where a page's rows take it from")
    return f"SELECT {', '.join(select)} FROM jsonb_to_recordset(%(rows)s::jsonb) AS r({', '.join(fields)})"


def _as_is(document: bytes) -> bytes:
    return document


@functools.cache
def _statement(recording: bool) -> str:
    cols = ", ".join(c.name for c in connector_files.c)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATED_ON_CONFLICT)
    return file_events.pg_upsert_with_events(_stage(), cols, updates, log=recording)


def upsert_page(
    conn: sa.Connection,
    account_id: uuid.UUID,
    provider: str,
    rows: Sequence[dict[str, Any]],
    rows_json: bytes,
    job_id: uuid.UUID | None,
    now: datetime,
) -> UpsertCounts:
    """Write ``rows`` (``file_rows.row`` dicts, one per external id, and the same as one JSON
    document: ``rows_json``); counts what changed."""
    params = {
        # Sent as the jsonb it is: no re-encoding of the document on the writer's thread.
        "rows": Jsonb(rows_json, dumps=_as_is),
        "account_id": account_id,
        "provider": provider,
        "now": now,
        "job_id": job_id,
    }
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_statement(file_events.RECORDING), params)
        written = cursor.fetchall()
    finally:
        cursor.close()
    inserted = sum(1 for _, is_new, _ in written if is_new)
    return UpsertCounts(
        inserted=inserted,
        updated=len(written) - inserted,
        unchanged=len(rows) - len(written),
        restored=sum(1 for _, is_new, revived in written if revived and not is_new),
        written_ids=[external_id for external_id, _, _ in written],
    )
