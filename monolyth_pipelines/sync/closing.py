"""Closing a job whose run cannot: the one rule for a failed outcome written from outside the run
(the reaper, the failure sensors, a run taking over a dead run's job)."""

from __future__ import annotations

import sqlalchemy as sa

from monolyth_pipelines.errors import safe_message
from monolyth_pipelines.store import accounts, events, jobs
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.schema import JobStatus


def reap_job(conn: sa.Connection, job: jobs.Job, reason: str, error_code: str = "run_died") -> bool:
    """Mark a job failed; False if it was already closed. The failed event is written only for a
    job a Dagster run was started for, with that run's id: a request refused before any run
    closes its row with ``last_error`` but is no failed sync."""
    account = accounts.get_account(conn, job.account_id)
    message = safe_message(f"{error_code}: {reason}")
    if not jobs.finish_job(conn, job.id, JobStatus.FAILED, last_error=message):
        return False
    if not job.run_id:
        return True
    events.log_event(
        conn,
        Event.SYNC_FAILED,
        {
            "provider": account.provider if account else "unknown",
            "account_id": job.account_id,
            "run_id": job.run_id,
            "error_code": error_code,
            "error_msg": safe_message(reason),
        },
    )
    return True
