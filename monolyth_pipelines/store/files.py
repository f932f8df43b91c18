"""connector_files: bulk upserts that write only what changed, and tombstones."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.store import dialect
from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.file_queries import (  # noqa: F401  (their home before file_queries)
    CHUNK,
    _chunks,
    count_live,
    live_meta_values,
    meta_scope,
    stored_meta,
    unseen_live_ids,
)
from monolyth_pipelines.store.schema import connector_files, connector_sweep_seen
from monolyth_pipelines.store.timeutil import utcnow


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0  # updated rows that had been tombstoned
    written_ids: list[str] = field(default_factory=list)

    def add(self, other: UpsertCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.restored += other.restored
        self.written_ids.extend(other.written_ids)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(record: FileRecord, meta_text: str | None = None) -> str:
    """What decides whether a row changed: every stored field but ids and timestamps of ours."""
    # repr() quotes strings and tells None from "None", so the joined fields cannot collide.
    fields = "\x1f".join(
        repr(value)
        for value in (
            record.title,
            record.mime,
            record.size,
            record.modified_at.isoformat() if record.modified_at else None,
            record.url,
        )
    )
    canonical = fields + "\x1e" + (meta_text if meta_text is not None else _json(record.meta))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _validate(records: Sequence[FileRecord]) -> None:
    for index, record in enumerate(records):
        if not isinstance(record.external_id, str) or not record.external_id:
            raise InvalidRecordError("external_id", "is required and must be a non-empty string", index)
        if record.size is not None and (not isinstance(record.size, int) or record.size < 0):
            raise InvalidRecordError("size", f"must be a non-negative integer, got {record.size!r}", index)
        if record.modified_at is not None and (
            not isinstance(record.modified_at, datetime) or record.modified_at.tzinfo is None
        ):
            raise InvalidRecordError("modified_at", "must be a timezone-aware datetime", index)
        if not isinstance(record.meta, dict):
            raise InvalidRecordError("meta_json", "must be a JSON object", index)


# Every column but the row's identity and birth: what an upsert may change.
_UPDATED_ON_CONFLICT = tuple(
    c.name for c in connector_files.c if c.name not in ("id", "account_id", "external_id", "created_at")
)


@functools.cache
def _sqlite_upsert_statement() -> Any:
    """The upsert for SQLite; Postgres takes the COPY path (``_copy_upsert_postgres``)."""
    stmt = sqlite.insert(connector_files)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["account_id", "external_id"],
        set_={name: excluded[name] for name in _UPDATED_ON_CONFLICT},
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
) -> UpsertCounts:
    """Insert new rows, update changed or tombstoned ones, leave the rest untouched.

    Validates the whole batch first, so a bad row writes nothing. Per chunk of rows: on Postgres
    a COPY and one INSERT .. SELECT .. ON CONFLICT that also reports what it wrote; on SQLite one
    SELECT and one executemany. Never a statement per row. ``dry_run`` only reports what would be
    written (e.g. to fetch content for exactly those rows before committing them).
    """
    _validate(records)
    # A page can name the same item twice (Drive changes); the last word wins.
    by_id = {record.external_id: record for record in records}
    counts = UpsertCounts()
    now = utcnow()
    has_tombstones = (
        conn.execute(
            sa.select(sa.literal(1))
            .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_not(None))
            .limit(1)
        ).first()
        is not None
    )
    for chunk in _chunks(list(by_id.values())):
        rows = [_row(account_id, provider, record, now) for record in chunk]
        if conn.dialect.name == "postgresql" and not dry_run:
            counts.add(_copy_upsert_postgres(conn, rows, has_tombstones))
            continue
        existing = {
            row.external_id: (row.content_hash, row.deleted_at)
            for row in conn.execute(
                sa.select(
                    connector_files.c.external_id,
                    connector_files.c.content_hash,
                    connector_files.c.deleted_at,
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
            elif before[0] != row["content_hash"] or before[1] is not None:
                counts.updated += 1
                counts.restored += before[1] is not None
            else:
                counts.unchanged += 1
                continue
            counts.written_ids.append(row["external_id"])
            written.append(row)
        if written and not dry_run:
            # One cached statement, many parameter sets: no 15,000-parameter statement is
            # compiled per page.
            conn.execute(_sqlite_upsert_statement(), [{**r, "meta_json": r["meta"]} for r in written])
    return counts


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _row(account_id: uuid.UUID, provider: str, record: FileRecord, now: datetime) -> dict[str, Any]:
    meta_text = _json(record.meta)
    # Postgres refuses NUL in text and jsonb, and one such item (a mail subject with =00 in it)
    # would otherwise fail every sync of the account. Checked on the serialised form: cheap.
    if "\\u0000" in meta_text or any("\x00" in (v or "") for v in (record.title, record.mime, record.url)):
        record = dataclasses.replace(
            record,
            title=_without_nul(record.title),
            mime=_without_nul(record.mime),
            url=_without_nul(record.url),
            meta=_without_nul(record.meta),
        )
        meta_text = _json(record.meta)
    return {
        "account_id": account_id,
        "provider": provider,
        "external_id": record.external_id,
        "title": record.title,
        "mime": record.mime,
        "size": record.size,
        "modified_at": record.modified_at,
        "url": record.url,
        "meta": record.meta,
        "meta_json": meta_text,
        "content_hash": content_hash(record, meta_text),
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "deleted_reason": None,
    }


_COLUMNS = tuple(c.name for c in connector_files.c)


def _copy_upsert_postgres(
    conn: sa.Connection, rows: list[dict[str, Any]], has_tombstones: bool
) -> UpsertCounts:
    """COPY the rows into a session-local staging table, then one INSERT .. SELECT .. ON CONFLICT.

    COPY is Postgres's bulk path: a page costs one round trip for the data and one statement,
    instead of a bound statement per row. The statement returns the rows it wrote (xmax = 0 marks
    an insert). Which updates revive a tombstone is asked only when the account has tombstones:
    that lookup doubled the cost of a page on the first sync, where there are none.
    """
    # Without "id": the staging table's default (gen_random_uuid()) makes them server-side.
    copied = tuple(c for c in _COLUMNS if c != "id")
    cols = ", ".join(copied)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED_ON_CONFLICT)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS monolyth_files_stage "
            "(LIKE connector_files INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY monolyth_files_stage ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in copied])
        revived: set[str] = set()
        if has_tombstones:
            cursor.execute(
                "SELECT f.external_id FROM connector_files f "
                "WHERE f.account_id = %s AND f.deleted_at IS NOT NULL "
                "AND f.external_id IN (SELECT external_id FROM monolyth_files_stage)",
                (rows[0]["account_id"],),
            )
            revived = {external_id for (external_id,) in cursor.fetchall()}
        cursor.execute(
            f"INSERT INTO connector_files (id, {cols}) SELECT id, {cols} FROM monolyth_files_stage"
            f" ON CONFLICT (account_id, external_id) DO UPDATE SET {updates}"
            " WHERE connector_files.content_hash <> EXCLUDED.content_hash"
            " OR connector_files.deleted_at IS NOT NULL"
            " RETURNING external_id, (xmax = 0) AS inserted"
        )
        written = cursor.fetchall()
        cursor.execute("DELETE FROM monolyth_files_stage")
    finally:
        cursor.close()
    inserted = sum(1 for _, is_new in written if is_new)
    return UpsertCounts(
        inserted=inserted,
        updated=len(written) - inserted,
        unchanged=len(rows) - len(written),
        restored=sum(1 for external_id, is_new in written if not is_new and external_id in revived),
        written_ids=[external_id for external_id, _ in written],
    )


def tombstone_files(
    conn: sa.Connection, account_id: uuid.UUID, tombstones: Sequence[Tombstone], at: datetime | None = None
) -> Counter[str]:
    """Mark live rows as gone, with why and when; returns rows marked per reason.

    Rows already tombstoned keep their first reason, and ids never stored are ignored.
    """
    at = at or utcnow()
    marked: Counter[str] = Counter()
    by_reason: dict[str, list[str]] = {}
    for tombstone in tombstones:
        by_reason.setdefault(tombstone.reason.value, []).append(tombstone.external_id)
    for reason, ids in by_reason.items():
        for chunk in _chunks(ids):
            result = conn.execute(
                connector_files.update()
                .where(
                    connector_files.c.account_id == account_id,
                    connector_files.c.external_id.in_(chunk),
                    connector_files.c.deleted_at.is_(None),
                )
                .values(deleted_at=at, deleted_reason=reason, updated_at=at)
            )
            marked[reason] += result.rowcount
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
    result = conn.execute(
        connector_files.update().where(*where).values(deleted_at=at, deleted_reason=reason, updated_at=at)
    )
    conn.execute(connector_sweep_seen.delete().where(connector_sweep_seen.c.sweep_id == sweep_id))
    return result.rowcount


def tombstone_out_of_scope(
    conn: sa.Connection,
    account_id: uuid.UUID,
    *,
    supported_mimes: Sequence[str],
    max_size: int,
    drop_shared_drives: bool,
    at: datetime | None = None,
) -> Counter[str]:
    """Tombstone live rows that the current limits exclude, each with its reason."""
    at = at or utcnow()
    live = [connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None)]
    rules: list[tuple[TombstoneReason, sa.ColumnElement[bool]]] = [
        (TombstoneReason.UNSUPPORTED_TYPE, connector_files.c.mime.not_in(list(supported_mimes))),
        (TombstoneReason.TOO_LARGE, connector_files.c.size > max_size),
    ]
    if drop_shared_drives:
        rules.append((TombstoneReason.OUT_OF_SCOPE, meta_scope("driveId", None) == sa.false()))
    marked: Counter[str] = Counter()
    for reason, condition in rules:
        result = conn.execute(
            connector_files.update()
            .where(*live, condition)
            .values(deleted_at=at, deleted_reason=reason.value, updated_at=at)
        )
        marked[reason.value] += result.rowcount
    return +marked


def tombstone_drive(
    conn: sa.Connection, account_id: uuid.UUID, drive_id: str, reason: str, at: datetime | None = None
) -> int:
    """Tombstone every live row of one shared drive (the user left it or it was deleted)."""
    at = at or utcnow()
    live = conn.execute(
        sa.select(connector_files.c.external_id, connector_files.c.meta_json).where(
            connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None)
        )
    )
    ids = [row.external_id for row in live if (row.meta_json or {}).get("driveId") == drive_id]
    return sum(
        tombstone_files(conn, account_id, [Tombstone(i, TombstoneReason(reason)) for i in ids], at).values()
    )
