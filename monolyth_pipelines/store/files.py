"""connector_files: bulk upserts that write only what changed, and tombstones."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.store import dialect, file_events, file_rows, pg_upsert
from monolyth_pipelines.store.file_queries import (  # noqa: F401  (their home before file_queries)
    CHUNK,
    _chunks,
    count_live,
    count_unseen_live,
    live_ids_with_meta,
    live_meta_values,
    meta_scope,
    stored_meta,
    unseen_live_ids,
    unseen_live_meta_values,
)
from monolyth_pipelines.store.file_rows import UpsertCounts, content_hash  # noqa: F401
from monolyth_pipelines.store.schema import connector_files, connector_sweep_seen
from monolyth_pipelines.store.scope import out_of_scope_rules
from monolyth_pipelines.store.timeutil import utcnow


@functools.cache
def _sqlite_upsert_statement() -> Any:
    """The upsert for SQLite; Postgres takes ``pg_upsert.upsert_page``."""
    stmt = sqlite.insert(connector_files)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["account_id", "external_id"],
        set_={name: excluded[name] for name in file_rows.UPDATED_ON_CONFLICT},
        # Guards against a concurrent writer having stored the same content meanwhile.
        where=sa.or_(
            connector_files.c.content_hash != excluded.content_hash,
            connector_files.c.deleted_at.is_not(None),
        ),
    )


def upsert_files(
    conn: sa.Connection,
    account_id: uuid.UUID,
    provider: str,
    records: Sequence[FileRecord],
    *,
    dry_run: bool = False,
    job_id: uuid.UUID | None = None,
) -> UpsertCounts:
    """Insert new rows, update changed or tombstoned ones, leave the rest untouched.

    Validates the whole batch first, so a bad row writes nothing. Per chunk of rows: on Postgres
    one statement (``pg_upsert``) that also reports what it wrote; on SQLite one SELECT and one
    executemany. Never a statement per row. ``dry_run`` only reports what would be written (e.g.
    to fetch content for exactly those rows before committing them). Each row written gets its
    connector_file_events row (``job_id``: the run's job) in the same transaction."""
    # A page can name the same item twice (Drive changes); the last word wins. A fetch thread
    # may have prepared the rows already.
    prepared = records if isinstance(records, file_rows.PreparedRecords) else file_rows.prepare(records)
    counts = UpsertCounts()
    now = utcnow()
    for rows in _chunks(prepared.rows):
        if conn.dialect.name == "postgresql" and not dry_run:
            # A page (up to CHUNK rows) goes with the JSON its preparation made already.
            whole = len(rows) == len(prepared.rows)
            document = prepared.rows_json if whole else file_rows.rows_document(rows)
            counts.add(pg_upsert.upsert_page(conn, account_id, provider, rows, document, job_id, now))
            continue
        existing = {
            row.external_id: row._mapping
            for row in conn.execute(
                sa.select(
                    connector_files.c.external_id,
                    connector_files.c.content_hash,
                    connector_files.c.deleted_at,
                    connector_files.c.deleted_reason,
                    connector_files.c.title,
                    connector_files.c.size,
                    connector_files.c.modified_at,
                    connector_files.c.mime,
                    connector_files.c.url,
                    connector_files.c.meta_json,
                ).where(
                    connector_files.c.account_id == account_id,
                    connector_files.c.external_id.in_([r["external_id"] for r in rows]),
                )
            )
        }
        written = []
        for row in rows:
            before = existing.get(row["external_id"])
            if before is None:
                counts.inserted += 1
            elif before["content_hash"] != row["content_hash"] or before["deleted_at"] is not None:
                counts.updated += 1
                counts.restored += before["deleted_at"] is not None
            else:
                counts.unchanged += 1
                continue
            counts.written_ids.append(row["external_id"])
            written.append(file_rows.full_row(account_id, provider, row, now))
        if written and not dry_run:
            # One cached statement, many parameter sets: no 15,000-parameter statement is
            # compiled per page.
            conn.execute(_sqlite_upsert_statement(), [{**r, "meta_json": r["meta"]} for r in written])
            file_events.insert_events(
                conn,
                [
                    event
                    for r in written
                    for event in file_events.row_events(existing.get(r["external_id"]), r, job_id, now)
                ],
            )
    return counts


def tombstone_files(
    conn: sa.Connection,
    account_id: uuid.UUID,
    tombstones: Sequence[Tombstone],
    at: datetime | None = None,
    *,
    job_id: uuid.UUID | None = None,
) -> Counter[str]:
    """Mark live rows as gone, with why and when, each with its event; returns rows marked per reason.

    Rows already tombstoned keep their first reason, and ids never stored are ignored.
    """
    at = at or utcnow()
    marked: Counter[str] = Counter()
    by_reason: dict[str, list[str]] = {}
    for tombstone in tombstones:
        by_reason.setdefault(tombstone.reason.value, []).append(tombstone.external_id)
    for reason, ids in by_reason.items():
        for chunk in _chunks(ids):
            where = [
                connector_files.c.account_id == account_id,
                connector_files.c.external_id.in_(chunk),
                connector_files.c.deleted_at.is_(None),
            ]
            marked[reason] += file_events.tombstone_where(conn, where, reason, at, job_id)
    return +marked


def record_sweep_seen(
    conn: sa.Connection, account_id: uuid.UUID, sweep_id: uuid.UUID, external_ids: Sequence[str]
) -> None:
    if not external_ids:
        return
    for chunk in _chunks(list(dict.fromkeys(external_ids))):
        stmt = dialect.insert(conn, connector_sweep_seen).values(
            [{"sweep_id": sweep_id, "external_id": e, "account_id": account_id} for e in chunk]
        )
        conn.execute(stmt.on_conflict_do_nothing())


def tombstone_unseen(
    conn: sa.Connection,
    account_id: uuid.UUID,
    sweep_id: uuid.UUID,
    reason: str,
    at: datetime | None = None,
    scope: sa.ColumnElement[bool] | None = None,
    *,
    job_id: uuid.UUID | None = None,
) -> int:
    """After a reconciling full sweep: tombstone every live row in ``scope`` the sweep did not see."""
    at = at or utcnow()
    seen = sa.select(connector_sweep_seen.c.external_id).where(connector_sweep_seen.c.sweep_id == sweep_id)
    where = [
        connector_files.c.account_id == account_id,
        connector_files.c.deleted_at.is_(None),
        connector_files.c.external_id.not_in(seen),
    ]
    if scope is not None:
        where.append(scope)
    gone = file_events.tombstone_where(conn, where, reason, at, job_id)
    conn.execute(connector_sweep_seen.delete().where(connector_sweep_seen.c.sweep_id == sweep_id))
    return gone


def tombstone_out_of_scope(
    conn: sa.Connection,
    account_id: uuid.UUID,
    *,
    supported_mimes: Sequence[str],
    max_size: int,
    drop_shared_drives: bool,
    at: datetime | None = None,
    job_id: uuid.UUID | None = None,
) -> Counter[str]:
    """Tombstone live rows that the current limits exclude, each with its reason."""
    at = at or utcnow()
    live = [connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None)]
    # The same rules the mass-tombstone guard counts with (store/scope.py).
    rules = out_of_scope_rules(
        supported_mimes=supported_mimes, max_size=max_size, drop_shared_drives=drop_shared_drives
    )
    marked: Counter[str] = Counter()
    for reason, condition in rules:
        marked[reason.value] += file_events.tombstone_where(
            conn, [*live, condition], reason.value, at, job_id
        )
    return +marked


def tombstone_drive(
    conn: sa.Connection,
    account_id: uuid.UUID,
    drive_id: str,
    reason: str,
    at: datetime | None = None,
    *,
    job_id: uuid.UUID | None = None,
) -> int:
    """Tombstone every live row of one shared drive (the user left it or it was deleted)."""
    where = [
        connector_files.c.account_id == account_id,
        connector_files.c.deleted_at.is_(None),
        meta_scope("driveId", drive_id),
    ]
    return file_events.tombstone_where(conn, where, TombstoneReason(reason).value, at or utcnow(), job_id)
