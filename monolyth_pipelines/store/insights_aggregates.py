"""The Insights aggregates over one day's events, done in the database: a first-sync day of
1,000 accounts x 10,000 files is 10 million events, which pandas would have to hold at once.

Per account, the day's events by kind come back as one row per account; per document, the rows
of ``insights_document_activity_daily`` are computed by one ``INSERT .. SELECT`` (Postgres), or
on SQLite staged into a TEMP table under a read snapshot and copied in by the short write
transaction, so the rebuild does not hold SQLite's one write lock while it aggregates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from monolyth_pipelines.store.file_events import CAME_EVENTS, LEFT_EVENTS
from monolyth_pipelines.store.insights import _frame, _in
from monolyth_pipelines.store.schema import (
    FileEventKind,
    connector_file_events,
    connector_files,
    insights_document_activity_daily,
)
from monolyth_pipelines.store.types import TIMESTAMPTZ

if TYPE_CHECKING:
    import pandas as pd

MODIFIED_EVENTS = frozenset({FileEventKind.MODIFIED.value, FileEventKind.RENAMED.value})
STAGE = "insights_document_activity_stage"
_COLUMNS = [c.name for c in insights_document_activity_daily.c]


def event_counts_by_account(conn: sa.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """Per account with events in [start, end): items added, modified and removed."""
    e = connector_file_events

    def count(kinds: frozenset[str]) -> sa.ColumnElement[int]:
        return sa.cast(sa.func.sum(sa.case((e.c.event.in_(sorted(kinds)), 1), else_=0)), sa.BigInteger)

    query = (
        sa.select(
            e.c.account_id,
            count(CAME_EVENTS).label("items_added"),
            count(MODIFIED_EVENTS).label("items_modified"),
            count(LEFT_EVENTS).label("items_removed"),
        )
        .where(_in(e.c.observed_at, start, end))
        .group_by(e.c.account_id)
    )
    return _frame(conn.execute(query))


def document_activity_select(
    conn: sa.Connection, day: date, start: datetime, end: datetime, built_at: datetime
) -> sa.Select[tuple[object, ...]]:
    """The day's ``insights_document_activity_daily`` rows as one SELECT (columns in table order)."""
    e, f = connector_file_events, connector_files
    per_kind = (
        sa.select(
            e.c.account_id,
            e.c.external_id,
            e.c.event,
            sa.func.min(e.c.provider).label("provider"),
            sa.func.count().label("n"),
        )
        .where(_in(e.c.observed_at, start, end))
        .group_by(e.c.account_id, e.c.external_id, e.c.event)
        .subquery("per_kind")
    )
    object_agg = sa.func.jsonb_object_agg if conn.dialect.name == "postgresql" else sa.func.json_group_object
    per_doc = (
        sa.select(
            per_kind.c.account_id,
            per_kind.c.external_id,
            sa.func.min(per_kind.c.provider).label("provider"),
            sa.cast(sa.func.sum(per_kind.c.n), sa.Integer).label("changes"),
            object_agg(per_kind.c.event, per_kind.c.n).label("events"),
        )
        .group_by(per_kind.c.account_id, per_kind.c.external_id)
        .subquery("per_doc")
    )
    joined = per_doc.outerjoin(
        f, sa.and_(f.c.account_id == per_doc.c.account_id, f.c.external_id == per_doc.c.external_id)
    )
    return sa.select(
        sa.literal(day, sa.Date).label("day"),
        per_doc.c.account_id,
        per_doc.c.external_id,
        per_doc.c.provider,
        f.c.title,
        f.c.mime,
        per_doc.c.changes,
        per_doc.c.events,
        f.c.created_at.label("first_seen_at"),
        f.c.modified_at.label("last_modified_at"),
        sa.literal(built_at, TIMESTAMPTZ).label("built_at"),
    ).select_from(joined)


def stage_table() -> sa.Table:
    """A TEMP table shaped like the output table (SQLite: writing it takes no lock on the database)."""
    return sa.Table(
        STAGE,
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in insights_document_activity_daily.c),
        prefixes=["TEMPORARY"],
    )


def stage_document_activity(conn: sa.Connection, select: sa.Select[tuple[object, ...]]) -> sa.Table:
    stage = stage_table()
    stage.drop(conn, checkfirst=True)
    stage.create(conn)
    conn.execute(stage.insert().from_select(_COLUMNS, select))
    return stage


def insert_document_activity(
    conn: sa.Connection, day: date, source: sa.Select[tuple[object, ...]] | sa.Table
) -> int:
    """Insert the day's rows (already deleted by the caller) from the SELECT or the stage."""
    select = sa.select(*(source.c[name] for name in _COLUMNS)) if isinstance(source, sa.Table) else source
    t = insights_document_activity_daily
    conn.execute(t.insert().from_select(_COLUMNS, select))
    # Counted, not the statement's rowcount: psycopg reports none for an INSERT .. SELECT here.
    return conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.day == day)).scalar_one()


def document_activity_preview(conn: sa.Connection, day: date, limit: int) -> pd.DataFrame:
    t = insights_document_activity_daily
    query = sa.select(t).where(t.c.day == day).order_by(t.c.account_id, t.c.external_id).limit(limit)
    return _frame(conn.execute(query))
