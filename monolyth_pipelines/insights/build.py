"""Rebuild one day (UTC) of the three output tables: read, compute in pandas, replace the day.

The reads and the replacing writes run in one transaction, so a reader sees the old day or the
new day, never half of one, and rebuilding a day twice gives the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from monolyth_pipelines.insights import frames
from monolyth_pipelines.store import insights as store
from monolyth_pipelines.store.schema import (
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)
from monolyth_pipelines.store.timeutil import utcnow


@dataclass(frozen=True)
class DayBuild:
    day: date
    as_of: datetime
    sync_runs: pd.DataFrame
    account_usage: pd.DataFrame
    document_activity: pd.DataFrame

    def by_table(self) -> dict[str, pd.DataFrame]:
        return {
            insights_sync_runs_daily.name: self.sync_runs,
            insights_account_usage_daily.name: self.account_usage,
            insights_document_activity_daily.name: self.document_activity,
        }


def compute_day(conn: sa.Connection, day: date, now: datetime | None = None) -> DayBuild:
    now = now or utcnow()
    start, end = store.day_bounds(day)
    # "At the end of the day" is now for a day still running.
    as_of = min(end, now)
    jobs = store.jobs_of_day(conn, start, end)
    events = store.events_of_day(conn, start, end)
    return DayBuild(
        day=day,
        as_of=as_of,
        sync_runs=frames.sync_runs_daily(jobs, day, start, end, now),
        account_usage=frames.account_usage_daily(
            accounts=store.accounts_by(conn, end),
            jobs=jobs,
            events=events,
            live=frames.live_at(store.live_now_by_account(conn), store.live_change_since(conn, as_of)),
            last_success=store.last_success_by_account(conn, as_of),
            day=day,
            start=start,
            end=end,
            as_of=as_of,
            built_at=now,
        ),
        document_activity=frames.document_activity_daily(events, day, now),
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


def build_day(engine: sa.Engine, day: date, now: datetime | None = None) -> DayBuild:
    """Compute the day and replace its rows in all three tables, in one transaction."""
    with engine.begin() as conn:
        built = compute_day(conn, day, now)
        for name, frame in built.by_table().items():
            store.replace_day(conn, store.OUTPUT_TABLES[name], day, frames.records(frame))
    return built
