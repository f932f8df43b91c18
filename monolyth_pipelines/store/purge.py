"""Deleting everything the connector stored for one account (``accounts disconnect --purge``)."""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa

from monolyth_pipelines.store.jobs import stop_account_pages
from monolyth_pipelines.store.schema import (
    connector_file_events,
    connector_files,
    connector_jobs,
    connector_sweep_seen,
    connector_sync_state,
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sharing_daily,
    insights_sync_runs_daily,
    vault_documents,
)


def purge_account_data(conn: sa.Connection, account_id: uuid.UUID) -> tuple[dict[str, int], list[date]]:
    """Delete the account's items, their history, Vault documents, cursors, jobs and its rows
    in the Insights tables; returns the rows deleted per table and the days whose
    ``insights_sync_runs_daily`` totals counted its jobs (the caller rebuilds them in this
    transaction: ``insights.build.rebuild_sync_runs``).

    Run it after the account's jobs are closed (``accounts.disconnect``): it first waits for any
    page of the account still in flight (``stop_account_pages``), so it never holds a row a page
    wants while waiting for one the page holds. The account row (disconnected, without tokens)
    and activity_log stay: the audit trail of who connected and disconnected what is not the
    account's data.
    """
    stop_account_pages(conn, account_id)
    days = _built_run_days(conn, account_id)
    deleted: dict[str, int] = {}
    owned = (
        connector_file_events,
        insights_document_activity_daily,
        insights_account_usage_daily,
        insights_sharing_daily,
        vault_documents,
        connector_files,
        connector_sweep_seen,
        connector_sync_state,
        connector_jobs,
    )
    for table in owned:
        deleted[table.name] = conn.execute(table.delete().where(table.c.account_id == account_id)).rowcount
    return deleted, days


def _built_run_days(conn: sa.Connection, account_id: uuid.UUID) -> list[date]:
    """Days (UTC) an account's job started or finished on that the runs table has rows for."""
    j = connector_jobs
    days: set[date] = set()
    for started, finished in conn.execute(
        sa.select(j.c.started_at, j.c.finished_at).where(j.c.account_id == account_id)
    ):
        days.update(moment.date() for moment in (started, finished) if moment is not None)
    if not days:
        return []
    built = conn.execute(
        sa.select(insights_sync_runs_daily.c.day)
        .distinct()
        .where(insights_sync_runs_daily.c.day.in_(sorted(days)))
    ).scalars()
    return sorted(set(built))
