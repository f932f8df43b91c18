"""connector_files: bulk upserts that write only what changed, and tombstones."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.schema import connector_files, connector_sweep_seen
from monolyth_pipelines.store.timeutil import utcnow

# Rows per statement: 15 bound columns x 1000 stays under SQLite's and psycopg's parameter limits.
CHUNK = 1000


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0  # updated rows that had been tombstoned
    written_ids: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    def add(self, other: UpsertCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.restored += other.restored
        self.written_ids.extend(other.written_ids)


def content_hash(record: FileRecord) -> str:
    """What decides whether a row changed: every stored field but ids and timestamps of ours."""
    payload = [
        record.title,
        record.mime,
        record.size,
        record.modified_at.isoformat() if record.modified_at else None,
        record.url,
        record.meta,
    ]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
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


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _insert_for(conn: sa.Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def upsert_files(
    conn: sa.Connection,
    account_id: uuid.UUID,
    provider: str,
    records: Sequence[FileRecord],
    *,
    dry_run: bool = False,
) -> UpsertCounts:
    """Insert new rows, update changed or tombstoned ones, leave the rest untouched.

    Validates the whole batch first, so a bad row writes nothing. One SELECT and one multi-row
    INSERT .. ON CONFLICT per chunk of rows; never a statement per row. ``dry_run`` only reports
    what would be written (e.g. to fetch content for exactly those rows before committing them).
    """
    _validate(records)
    # A page can name the same item twice (Drive changes); the last word wins.
    by_id = {record.external_id: record for record in records}
    counts = UpsertCounts()
    now = utcnow()
    ids = list(by_id)
    for chunk in _chunks(ids):
        existing = {
            row.external_id: (row.content_hash, row.deleted_at)
            for row in conn.execute(
                sa.select(
                    connector_files.c.external_id,
                    connector_files.c.content_hash,
                    connector_files.c.deleted_at,
                ).where(connector_files.c.account_id == account_id, connector_files.c.external_id.in_(chunk))
            )
        }
        rows = []
        for external_id in chunk:
            record = by_id[external_id]
            digest = content_hash(record)
            before = existing.get(external_id)
            if before is None:
                counts.inserted += 1
            elif before[0] != digest or before[1] is not None:
                counts.updated += 1
                counts.restored += before[1] is not None
            else:
                counts.unchanged += 1
                continue
            counts.written_ids.append(external_id)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "account_id": account_id,
                    "provider": provider,
                    "external_id": external_id,
                    "title": record.title,
                    "mime": record.mime,
                    "size": record.size,
                    "modified_at": record.modified_at,
                    "url": record.url,
                    "meta_json": record.meta,
                    "content_hash": digest,
                    "created_at": now,
                    "updated_at": now,
                    "deleted_at": None,
                    "deleted_reason": None,
                }
            )
        if rows and not dry_run:
            stmt = _insert_for(conn)(connector_files).values(rows)
            excluded = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=["account_id", "external_id"],
                set_={
                    name: excluded[name]
                    for name in (
                        "provider",
                        "title",
                        "mime",
                        "size",
                        "modified_at",
                        "url",
                        "meta_json",
                        "content_hash",
                        "updated_at",
                        "deleted_at",
                        "deleted_reason",
                    )
                },
                # Guards against a concurrent writer having stored the same content meanwhile.
                where=sa.or_(
                    connector_files.c.content_hash != excluded.content_hash,
                    connector_files.c.deleted_at.is_not(None),
                ),
            )
            conn.execute(stmt)
    return counts


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
        stmt = _insert_for(conn)(connector_sweep_seen).values(
            [{"sweep_id": sweep_id, "external_id": e, "account_id": account_id} for e in chunk]
        )
        conn.execute(stmt.on_conflict_do_nothing())


def tombstone_unseen(
    conn: sa.Connection, account_id: uuid.UUID, sweep_id: uuid.UUID, reason: str, at: datetime | None = None
) -> int:
    """After a reconciling full sweep: tombstone every live row the sweep did not see."""
    at = at or utcnow()
    seen = sa.select(connector_sweep_seen.c.external_id).where(connector_sweep_seen.c.sweep_id == sweep_id)
    result = conn.execute(
        connector_files.update()
        .where(
            connector_files.c.account_id == account_id,
            connector_files.c.deleted_at.is_(None),
            connector_files.c.external_id.not_in(seen),
        )
        .values(deleted_at=at, deleted_reason=reason, updated_at=at)
    )
    conn.execute(connector_sweep_seen.delete().where(connector_sweep_seen.c.sweep_id == sweep_id))
    return result.rowcount


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


def stored_meta(
    conn: sa.Connection, account_id: uuid.UUID, external_ids: Sequence[str]
) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
    """meta_json and deleted_reason of stored rows, for decisions that depend on what we knew."""
    found: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
    for chunk in _chunks(list(external_ids)):
        rows = conn.execute(
            sa.select(
                connector_files.c.external_id, connector_files.c.meta_json, connector_files.c.deleted_reason
            ).where(connector_files.c.account_id == account_id, connector_files.c.external_id.in_(chunk))
        )
        found.update({row.external_id: (row.meta_json, row.deleted_reason) for row in rows})
    return found


def count_live(conn: sa.Connection, account_id: uuid.UUID) -> int:
    return conn.execute(
        sa.select(sa.func.count())
        .select_from(connector_files)
        .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
    ).scalar_one()
