"""Rebuild one day (UTC) of the three output tables: read, compute, replace the day.

The runs and accounts tables are small (one day's jobs, one row per account) and computed in
pandas; the per-document table can be millions of rows on a first-sync day, so it is aggregated
in SQL (``store.insights_aggregates``) and never passes through Python.

Postgres: reads and the replacing writes run in one transaction, so a reader sees the old day or
the new day, never half of one. SQLite has one writer at a time: the reads and the per-document
aggregate run under a read snapshot (no write lock; the aggregate goes into a TEMP table), then
one short write transaction replaces the day in all three tables. Either way rebuilding a day
twice gives the same rows, and ``built_at`` (taken before the first read) is what the refresh
sensor compares later changes with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from monolyth_pipelines.insights import frames
from monolyth_pipelines.store import insights as store
from monolyth_pipelines.store import insights_aggregates as aggregates
from monolyth_pipelines.store.engine import SQLITE_READ_ONLY
from monolyth_pipelines.store.schema import (
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)
from monolyth_pipelines.store.timeutil import utcnow

PREVIEW_ROWS = 10


@dataclass
class DayBuild:
    day: date
    as_of: datetime
    built_at: datetime
    sync_runs: pd.DataFrame
    account_usage: pd.DataFrame
    document_activity: pd.DataFrame  # the first rows only (the table's preview)
    document_rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def by_table(self) -> dict[str, pd.DataFrame]:
        return {
            insights_sync_runs_daily.name: self.sync_runs,
            insights_account_usage_daily.name: self.account_usage,
            insights_document_activity_daily.name: self.document_activity,
        }

    def row_counts(self) -> dict[str, int]:
        return {
            insights_sync_runs_daily.name: len(self.sync_runs),
            insights_account_usage_daily.name: len(self.account_usage),
            insights_document_activity_daily.name: self.document_rows,
        }


def compute_day(conn: sa.Connection, day: date, now: datetime | None = None) -> DayBuild:
    """The runs and accounts rows of the day (pandas, small inputs); documents are SQL's."""
    now = now or utcnow()
    start, end = store.day_bounds(day)
    # "At the end of the day" is now for a day still running.
    as_of = min(end, now)
    jobs = store.jobs_of_day(conn, start, end)
    return DayBuild(
        day=day,
        as_of=as_of,
        built_at=now,
        sync_runs=frames.sync_runs_daily(jobs, day, start, end, now),
        account_usage=frames.account_usage_daily(
            accounts=store.accounts_by(conn, end),
            jobs=jobs,
            event_counts=aggregates.event_counts_by_account(conn, start, end),
            live=frames.live_at(store.live_now_by_account(conn), store.live_change_since(conn, as_of)),
            last_success=store.last_success_by_account(conn, as_of),
            day=day,
            start=start,
            end=end,
            as_of=as_of,
            built_at=now,
        ),
        document_activity=pd.DataFrame(columns=[c.name for c in insights_document_activity_daily.c]),
    )


def rebuild_sync_runs(conn: sa.Connection, days: list[date], now: datetime | None = None) -> None:
    """Recompute ``insights_sync_runs_daily`` for ``days`` inside the caller's transaction: after a
    purge deleted an account's jobs, the totals they were part of (the other two tables are per
    account, so deleting its rows there is exact)."""
    now = now or utcnow()
    for day in days:
        start, end = store.day_bounds(day)
        frame = frames.sync_runs_daily(store.jobs_of_day(conn, start, end), day, start, end, now)
        store.replace_day(conn, insights_sync_runs_daily, day, frames.records(frame))


def _replace(
    conn: sa.Connection, built: DayBuild, documents: sa.Select[tuple[object, ...]] | sa.Table
) -> None:
    day = built.day
    store.replace_day(conn, insights_sync_runs_daily, day, frames.records(built.sync_runs))
    store.replace_day(conn, insights_account_usage_daily, day, frames.records(built.account_usage))
    store.replace_day(conn, insights_document_activity_daily, day, ())
    built.document_rows = aggregates.insert_document_activity(conn, day, documents)
    built.document_activity = aggregates.document_activity_preview(conn, day, PREVIEW_ROWS)


@contextmanager
def _sqlite_read(conn: sa.Connection) -> Iterator[sa.Connection]:
    conn.execution_options(**{SQLITE_READ_ONLY: True})
    try:
        with conn.begin():
            yield conn
    finally:
        conn.execution_options(**{SQLITE_READ_ONLY: False})


def build_day(engine: sa.Engine, day: date, now: datetime | None = None) -> DayBuild:
    """Compute the day and replace its rows in all three tables (see the module docstring)."""
    now = now or utcnow()
    start, end = store.day_bounds(day)
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            built = compute_day(conn, day, now)
            _replace(conn, built, aggregates.document_activity_select(conn, day, start, end, now))
        return built
    with engine.connect() as conn:
        with _sqlite_read(conn):
            built = compute_day(conn, day, now)
            stage = aggregates.stage_document_activity(
                conn, aggregates.document_activity_select(conn, day, start, end, now)
            )
        try:
            with conn.begin():
                _replace(conn, built, stage)
        finally:
            with _sqlite_read(conn):
                stage.drop(conn)
    return built
