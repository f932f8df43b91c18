"""connector_file_events: the change history, written by the statements that change connector_files.

Each writer knows the old and the new state of the rows it touches, so the events come from the
same statement (Postgres) or transaction (SQLite) as the rows: a crash leaves both or neither,
and an item that did not change writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.domain.records import TombstoneReason
from monolyth_pipelines.store import sharing_events
from monolyth_pipelines.store.schema import (
    JSONB,
    TIMESTAMPTZ,
    UUID,
    FileEventKind,
    connector_file_events,
    connector_files,
)

# bench/insights.py turns this off to price what the events cost a sync; nothing else should.
RECORDING = True

EVENT_COLUMNS = (
    "account_id",
    "provider",
    "external_id",
    "job_id",
    "event",
    "reason",
    "occurred_at",
    "observed_at",
    "changes",
)

# How the live set moves: these kinds bring an item in, those take it out.
CAME_EVENTS = frozenset(
    {FileEventKind.ADDED.value, FileEventKind.RESTORED.value, FileEventKind.LABELLED.value}
)
LEFT_EVENTS = frozenset(
    {
        FileEventKind.TRASHED.value,
        FileEventKind.DELETED.value,
        FileEventKind.ACCESS_LOST.value,
        FileEventKind.MOVED_OUT_OF_SCOPE.value,
        FileEventKind.UNLABELLED.value,
    }
)

_EVENT_FOR_REASON = {
    TombstoneReason.TRASHED: FileEventKind.TRASHED,
    TombstoneReason.DELETED: FileEventKind.DELETED,
    TombstoneReason.ACCESS_LOST: FileEventKind.ACCESS_LOST,
    TombstoneReason.UNSUPPORTED_TYPE: FileEventKind.MOVED_OUT_OF_SCOPE,
    TombstoneReason.TOO_LARGE: FileEventKind.MOVED_OUT_OF_SCOPE,
    TombstoneReason.OUT_OF_SCOPE: FileEventKind.MOVED_OUT_OF_SCOPE,
    TombstoneReason.LEFT_LABEL: FileEventKind.UNLABELLED,
    # Gone from a full listing without Google saying why: as far as we can tell, deleted
    # (``reason`` keeps the distinction).
    TombstoneReason.NOT_SEEN_IN_FULL_SYNC: FileEventKind.DELETED,
}


def event_for_tombstone(reason: str) -> FileEventKind:
    return _EVENT_FOR_REASON[TombstoneReason(reason)]


def iso(value: datetime | None) -> str | None:
    """The one text form of a time inside ``changes``: UTC, ISO 8601 without an offset, fraction
    without trailing zeros; exactly what Postgres's to_jsonb renders (``_PG_ISO``), which is far
    cheaper per row than to_char."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat, not strftime: a few times cheaper, and it pads years below 1000 as to_jsonb does;
    # of a UTC time it ends in "+00:00", cut off rather than built again without the zone.
    text = value.isoformat()[:-6]
    return text.rstrip("0") if value.microsecond else text


def changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """{"field": {"old": .., "new": ..}} for title, size and modified_at where they differ."""
    out: dict[str, Any] = {}
    for name in ("title", "size", "modified_at"):
        before = old[name] if old is not None else None
        after = new[name]
        if before != after:
            if name == "modified_at":
                before, after = iso(before), iso(after)
            out[name] = {"old": before, "new": after}
    return out


def added_changes(title: str | None, size: int | None, modified_at: datetime | None) -> dict[str, Any]:
    """``changes(None, row)``, the changes of a new row, without the general case's loop: it
    runs for every row of a page (file_rows.row)."""
    out: dict[str, Any] = {}
    if title is not None:
        out["title"] = {"old": None, "new": title}
    if size is not None:
        out["size"] = {"old": None, "new": size}
    if modified_at is not None:
        out["modified_at"] = {"old": None, "new": iso(modified_at)}
    return out


def upsert_event(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], job_id: uuid.UUID | None, now: datetime
) -> dict[str, Any]:
    """The event of one written row, from the row before (None: new) and after the upsert."""
    reason = None
    if old is None:
        event = FileEventKind.ADDED
    elif old["deleted_at"] is not None:
        reason = old["deleted_reason"]
        left_label = reason == TombstoneReason.LEFT_LABEL.value
        event = FileEventKind.LABELLED if left_label else FileEventKind.RESTORED
    elif old["title"] != new["title"]:
        event = FileEventKind.RENAMED
    else:
        event = FileEventKind.MODIFIED
    return {
        "account_id": new["account_id"],
        "provider": new["provider"],
        "external_id": new["external_id"],
        "job_id": job_id,
        "event": event.value,
        "reason": reason,
        "occurred_at": new["modified_at"],
        "observed_at": now,
        "changes": changes(old, new),
    }


def row_events(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], job_id: uuid.UUID | None, now: datetime
) -> list[dict[str, Any]]:
    """Every event of one written row: its ``upsert_event``, and a sharing event when who can see
    it changed (alone when nothing else did: store/sharing_events.py)."""
    shared, only_sharing = sharing_events.python_event(old, new, job_id, now)
    out = [] if shared is not None and only_sharing else [upsert_event(old, new, job_id, now)]
    return out if shared is None else [*out, shared]


def insert_events(conn: sa.Connection, events: Sequence[dict[str, Any]]) -> None:
    if events and RECORDING:
        conn.execute(connector_file_events.insert(), list(events))


_PG_ISO = "to_jsonb({} AT TIME ZONE 'UTC')"


def _pg_change(name: str, old: str, new: str, render: str = "{}") -> str:
    """``{"name": {"old": .., "new": ..}}`` when the column changed, else ``{}``."""
    before, after = render.format(old), render.format(new)
    return (
        f"CASE WHEN {old} IS DISTINCT FROM {new} THEN jsonb_build_object('{name}', "
        f"jsonb_build_object('old', {before}, 'new', {after})) ELSE '{{}}'::jsonb END"
    )


def pg_upsert_with_events(stage: str, cols: str, updates: str, *, log: bool = True) -> str:
    """Postgres's page upsert, from ``stage`` (a SELECT of whole connector_files rows and each
    row's ``added_changes``: ``changes(None, row)``), that also logs its events (unless ``log``
    is off) in the same statement.

    Every CTE reads the same snapshot, so ``old`` holds the rows as they were before ``written``
    changed them; only rows the upsert really wrote (new, changed or revived) get an event.
    Returns (external_id, inserted, revived) per row written.
    """
    changed = " || ".join(
        (
            _pg_change("title", "o.title", "w.title"),
            _pg_change("size", "o.size", "w.size"),
            _pg_change("modified_at", "o.modified_at", "w.modified_at", _PG_ISO),
        )
    )
    logged = f""", logged AS (
    INSERT INTO connector_file_events ({", ".join(EVENT_COLUMNS)})
    SELECT w.account_id, w.provider, w.external_id, %(job_id)s,
        CASE WHEN w.inserted THEN 'added'
             WHEN o.deleted_at IS NOT NULL AND o.deleted_reason = 'left_label' THEN 'labelled'
             WHEN o.deleted_at IS NOT NULL THEN 'restored'
             WHEN o.title IS DISTINCT FROM w.title THEN 'renamed'
             ELSE 'modified' END,
        CASE WHEN NOT w.inserted THEN o.deleted_reason END,
        w.modified_at, %(now)s, CASE WHEN w.inserted THEN s.added_changes ELSE {changed} END
    FROM written w LEFT JOIN old o ON o.external_id = w.external_id
    JOIN stage s ON s.external_id = w.external_id
    -- A change of who can see it, and nothing else: its sharing event is the row's only one.
    WHERE NOT EXISTS (SELECT 1 FROM sharing x WHERE x.external_id = w.external_id AND x.only_sharing)
){sharing_events.pg_insert(", ".join(EVENT_COLUMNS))}"""
    # ``old`` looks the page's ids up in the unique index, whatever the statistics say: written
    # as ``IN (SELECT ..)`` the planner chose, while a new account's rows looked few, to read all
    # of them and hash-join, and the prepared statement kept that plan for the rest of the sync,
    # so each page of a first full sync read every row the earlier pages had written.
    return f"""
WITH stage AS MATERIALIZED ({stage}
), old AS MATERIALIZED (
    SELECT f.external_id, f.title, f.size, f.modified_at, f.deleted_at, f.deleted_reason,
        f.mime, f.url, f.meta_json
    FROM connector_files f
    WHERE f.account_id = %(account_id)s
      AND f.external_id = ANY(ARRAY(SELECT external_id FROM stage))
), written AS (
    INSERT INTO connector_files ({cols}) SELECT {cols} FROM stage
    ON CONFLICT (account_id, external_id) DO UPDATE SET {updates}
    WHERE connector_files.content_hash <> EXCLUDED.content_hash OR connector_files.deleted_at IS NOT NULL
    RETURNING account_id, provider, external_id, title, size, modified_at, (xmax = 0) AS inserted
){(sharing_events.pg_ctes() + logged) if log else ""}
SELECT w.external_id, w.inserted, (o.deleted_at IS NOT NULL) AS revived
FROM written w LEFT JOIN old o ON o.external_id = w.external_id
"""


def tombstone_where(
    conn: sa.Connection,
    where: Sequence[sa.ColumnElement[bool]],
    reason: str,
    at: datetime,
    job_id: uuid.UUID | None,
) -> int:
    """Tombstone the rows ``where`` selects (callers include ``deleted_at IS NULL``), each with
    its event; returns how many."""
    update = (
        connector_files.update().where(*where).values(deleted_at=at, deleted_reason=reason, updated_at=at)
    )
    if not RECORDING:
        return conn.execute(update).rowcount

    def logged(source: Any) -> sa.Select[Any]:
        return sa.select(
            source.c.account_id,
            source.c.provider,
            source.c.external_id,
            sa.literal(job_id, UUID),
            sa.literal(event_for_tombstone(reason).value),
            sa.literal(reason),
            sa.null(),
            sa.literal(at, TIMESTAMPTZ),
            sa.literal({}, JSONB),
        )

    if conn.dialect.name == "postgresql":
        gone = update.returning(
            connector_files.c.account_id, connector_files.c.provider, connector_files.c.external_id
        ).cte("gone")
        # A DML CTE hides the rowcount from SQLAlchemy: count what the INSERT returned instead.
        inserted = (
            connector_file_events.insert()
            .from_select(EVENT_COLUMNS, logged(gone))
            .returning(connector_file_events.c.id)
            .cte("logged")
        )
        return conn.execute(sa.select(sa.func.count()).select_from(inserted)).scalar_one()
    # SQLite: this transaction holds the only write lock from its first write to the commit, so
    # the UPDATE changes exactly the rows this SELECT logged.
    conn.execute(
        connector_file_events.insert().from_select(EVENT_COLUMNS, logged(connector_files).where(*where))
    )
    return conn.execute(update).rowcount
