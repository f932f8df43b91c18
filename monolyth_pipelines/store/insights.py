"""The SQL side of Insights: the day-bounded reads the builders take, the aggregates pushed into
the database because their input is large (live items over all of connector_files), and the
write that replaces one day of an output table.

Every read is bounded by the day (indexed time columns) or aggregated in SQL, so rebuilding a
day costs the same whether 30 or 900 days of history are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from monolyth_pipelines.store.file_events import CAME_EVENTS
from monolyth_pipelines.store.schema import (
    AccountStatus,
    JobStatus,
    connector_accounts,
    connector_file_events,
    connector_files,
    connector_jobs,
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)

if TYPE_CHECKING:
    # pandas is imported where a frame is built, not here: the sensor and the connector runs load
    # this module (through definitions) and never build one (~0.4 s of CPU per process).
    import pandas as pd

OUTPUT_TABLES = {
    t.name: t
    for t in (insights_sync_runs_daily, insights_account_usage_daily, insights_document_activity_daily)
}
FINISHED = (JobStatus.COMPLETED.value, JobStatus.FAILED.value)
CHUNK = 1000


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _frame(result: sa.CursorResult[Any]) -> pd.DataFrame:
    import pandas as pd

    # Through SQLAlchemy's result types (UTC-aware times on SQLite too), not pandas' own reader.
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _in(column: sa.ColumnElement[Any], start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)


def jobs_of_day(conn: sa.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """Jobs that started or finished in [start, end), with their account's provider."""
    j, a = connector_jobs, connector_accounts
    query = (
        sa.select(
            j.c.id,
            j.c.account_id,
            a.c.provider,
            j.c.kind,
            j.c.status,
            j.c.started_at,
            j.c.finished_at,
            j.c.last_error,
            j.c.meta_json,
        )
        .join(a, a.c.id == j.c.account_id)
        .where(sa.or_(_in(j.c.started_at, start, end), _in(j.c.finished_at, start, end)))
    )
    return _frame(conn.execute(query))


def accounts_by(conn: sa.Connection, end: datetime) -> pd.DataFrame:
    """Accounts created by ``end``, except purged ones (disconnected and not a job left: a
    purge deletes them all), which must not come back as rows of zeros."""
    a, j = connector_accounts, connector_jobs
    purged = sa.and_(
        a.c.status == AccountStatus.DISCONNECTED.value,
        ~sa.exists().where(j.c.account_id == a.c.id),
    )
    query = sa.select(a.c.id.label("account_id"), a.c.owner_id, a.c.provider).where(
        a.c.created_at < end, ~purged
    )
    return _frame(conn.execute(query))


def live_now_by_account(conn: sa.Connection) -> pd.DataFrame:
    """Live items and their bytes per account as connector_files holds them now.

    Aggregated here, not in pandas: the input is all of connector_files (docs/insights.md has
    the measurement).
    """
    f = connector_files
    query = (
        sa.select(
            f.c.account_id,
            sa.func.count().label("live_items"),
            # sum(bigint) is numeric on Postgres: Decimal in Python.
            sa.cast(sa.func.coalesce(sa.func.sum(f.c.size), 0), sa.BigInteger).label("live_bytes"),
        )
        .where(f.c.deleted_at.is_(None))
        .group_by(f.c.account_id)
    )
    return _frame(conn.execute(query))


def live_change_since(conn: sa.Connection, since: datetime) -> pd.DataFrame:
    """Per account: how far today's live items and bytes are from what they were at ``since``.

    Rewinds through the events observed since: an item's state then is the one before its first
    event since (not live if that event brought it in, live otherwise), its size then the "old"
    size of its first size change since, else its current size. Set-based: old days read many
    events, so they are reduced here, never carried into Python.
    """
    e = connector_file_events
    old_size = e.c.changes[("size", "old")].as_integer()
    new_size = e.c.changes[("size", "new")].as_integer()
    r = rewind_since(
        since,
        details=(old_size.label("old_size"),),
        detail_where=sa.or_(old_size.is_not(None), new_size.is_not(None)),
    )
    size_then = sa.case(
        (r.detail.c.account_id.is_not(None), sa.func.coalesce(r.detail.c.old_size, 0)),
        else_=sa.func.coalesce(connector_files.c.size, 0),
    )
    size_now = sa.func.coalesce(connector_files.c.size, 0)
    query = (
        sa.select(
            r.first.c.account_id,
            sa.cast(sa.func.sum(r.live_then - r.live_now), sa.BigInteger).label("items_delta"),
            sa.cast(sa.func.sum(r.live_then * size_then - r.live_now * size_now), sa.BigInteger).label(
                "bytes_delta"
            ),
        )
        .select_from(r.source)
        .where(r.first.c.n == 1)
        .group_by(r.first.c.account_id)
    )
    return _frame(conn.execute(query))


@dataclass(frozen=True)
class Rewind:
    """What rewinding today's rows through the events since a moment joins: each item's first
    event since (``first``; its row ``n == 1``), its row now, and its first event since that
    carries a given detail (``detail``; the ``old`` side of that change is the value then)."""

    first: sa.Subquery
    detail: sa.Subquery
    source: sa.FromClause
    live_then: sa.ColumnElement[int]  # 0 if the first event since brought the item in, else 1
    live_now: sa.ColumnElement[int]


def rewind_since(
    since: datetime,
    *,
    details: Iterable[sa.ColumnElement[Any]],
    detail_where: sa.ColumnElement[bool],
    provider: str | None = None,
) -> Rewind:
    f, e = connector_files, connector_file_events
    key = (e.c.account_id, e.c.external_id)
    window = sa.func.row_number().over(partition_by=key, order_by=e.c.id)
    scope = [e.c.observed_at >= since] + ([e.c.provider == provider] if provider else [])
    first = sa.select(*key, e.c.event, window.label("n")).where(*scope).subquery("first_event")
    detail = (
        sa.select(*key, *details, window.label("n"))
        .where(e.c.observed_at >= since, detail_where)
        .subquery("first_detail")
    )
    source = first.outerjoin(
        f, sa.and_(f.c.account_id == first.c.account_id, f.c.external_id == first.c.external_id)
    ).outerjoin(
        detail,
        sa.and_(
            detail.c.account_id == first.c.account_id,
            detail.c.external_id == first.c.external_id,
            detail.c.n == 1,
        ),
    )
    return Rewind(
        first=first,
        detail=detail,
        source=source,
        live_then=sa.case((first.c.event.in_(sorted(CAME_EVENTS)), 0), else_=1),
        live_now=sa.case((sa.and_(f.c.id.is_not(None), f.c.deleted_at.is_(None)), 1), else_=0),
    )


def last_success_by_account(conn: sa.Connection, as_of: datetime) -> pd.DataFrame:
    j = connector_jobs
    query = (
        sa.select(j.c.account_id, sa.func.max(j.c.finished_at).label("last_success_at"))
        .where(j.c.status == JobStatus.COMPLETED.value, j.c.finished_at < as_of)
        .group_by(j.c.account_id)
    )
    import pandas as pd

    frame = _frame(conn.execute(query))
    # max() loses the column type on SQLite: the text comes back as it is stored.
    frame["last_success_at"] = pd.to_datetime(frame["last_success_at"], utc=True)
    return frame


def replace_day(conn: sa.Connection, table: sa.Table, day: date, rows: Iterable[Mapping[str, Any]]) -> int:
    """Delete the day's rows and insert these: run inside the caller's one transaction."""
    conn.execute(table.delete().where(table.c.day == day))
    batch: list[Mapping[str, Any]] = []
    written = 0
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            conn.execute(table.insert(), batch)
            written, batch = written + len(batch), []
    if batch:
        conn.execute(table.insert(), batch)
        written += len(batch)
    return written


def read_days(
    conn: sa.Connection, table: sa.Table, first: date, last: date, provider: str | None = None
) -> pd.DataFrame:
    query = sa.select(table).where(table.c.day >= first, table.c.day <= last)
    if provider is not None:
        query = query.where(table.c.provider == provider)
    return _frame(conn.execute(query.order_by(table.c.day)))


def finished_jobs_by_provider_kind(
    conn: sa.Connection, start: datetime, end: datetime
) -> dict[tuple[str, str], int]:
    """What the runs table's completed + failed must add up to, straight from connector_jobs."""
    j, a = connector_jobs, connector_accounts
    query = (
        sa.select(a.c.provider, j.c.kind, sa.func.count())
        .join(a, a.c.id == j.c.account_id)
        .where(j.c.status.in_(FINISHED), _in(j.c.finished_at, start, end))
        .group_by(a.c.provider, j.c.kind)
    )
    return {(provider, kind): n for provider, kind, n in conn.execute(query)}


def live_items_now(conn: sa.Connection) -> dict[Any, int]:
    f = connector_files
    query = (
        sa.select(f.c.account_id, sa.func.count()).where(f.c.deleted_at.is_(None)).group_by(f.c.account_id)
    )
    return {account_id: n for account_id, n in conn.execute(query)}


def latest_source_change(conn: sa.Connection, start: datetime, end: datetime) -> datetime | None:
    """When anything a day's partition reads last changed: a job of the day or an event in it."""
    j, e = connector_jobs, connector_file_events
    job_change = sa.select(sa.func.max(j.c.updated_at)).where(
        sa.or_(_in(j.c.started_at, start, end), _in(j.c.finished_at, start, end))
    )
    event_change = sa.select(sa.func.max(e.c.observed_at)).where(_in(e.c.observed_at, start, end))
    found = [conn.execute(q).scalar() for q in (job_change, event_change)]
    # SQLite hands max() back as the stored text; Postgres as an aware datetime.
    times = [_utc(v) for v in found if v]
    return max(times) if times else None


def _utc(value: datetime | str) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def jobs_running(conn: sa.Connection) -> int:
    j = connector_jobs
    return conn.execute(
        sa.select(sa.func.count()).select_from(j).where(j.c.status == JobStatus.RUNNING.value)
    ).scalar_one()
