"""Keeping connector_jobs truthful when a run cannot do it itself.

Plain Python, no Dagster: the sensors in ``defs/automation.py`` pass in what Dagster knows about
runs (a status per run id), and these functions decide and write. Every close goes through
``sync.run.reap_job``, which only closes an open row, so two closers (the failure sensor and the
reaper, or a sensor and the run itself) never write two outcomes or two failed events.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from monolyth_pipelines.errors import ErrorCode
from monolyth_pipelines.store import automation_queries as q
from monolyth_pipelines.store import batch_queries
from monolyth_pipelines.store.jobs import Job
from monolyth_pipelines.store.schema import AccountStatus, JobStatus
from monolyth_pipelines.sync.closing import reap_job

RUN_DIED = "run_died"


class RunState:
    """What the reaper needs to know about a Dagster run, without importing Dagster."""

    ACTIVE = "active"  # queued, starting, started, canceling: it may still write its own outcome
    ENDED = "ended"  # success, failure, canceled
    MISSING = "missing"  # no such run in this instance


@dataclass(frozen=True)
class Closed:
    job_id: uuid.UUID
    account_id: uuid.UUID
    error_code: str
    reason: str


def unsyncable_reason(
    request: q.PendingRequest, provider_of_kind: Mapping[str, str]
) -> tuple[str, str] | None:
    """Why a pending request must be refused rather than run: (error_code, reason), or None to run it."""
    job = request.job
    if request.provider is None:
        return str(ErrorCode.NOT_FOUND), f"account {job.account_id} does not exist"
    expected = provider_of_kind.get(job.kind)
    if expected is not None and request.provider != expected:
        return (
            str(ErrorCode.BAD_REQUEST),
            f"a {job.kind} job was requested for account {job.account_id}, which is a "
            f"{request.provider} account",
        )
    if request.account_status != AccountStatus.CONNECTED:
        # Same codes as SyncRun.start uses for a run that reaches a non-connected account.
        code = (
            ErrorCode.AUTH_REVOKED if request.account_status == AccountStatus.ERROR else ErrorCode.BAD_REQUEST
        )
        return (
            str(code),
            f"account {job.account_id} is {request.account_status}, not connected: nothing was synced; "
            "reconnect the account, then ask again",
        )
    return None


def refuse_requests(engine: sa.Engine, refusals: Iterable[tuple[Job, str, str]]) -> list[Closed]:
    """Close pending jobs that will never run, each with last_error and connector_sync_failed."""
    refusals = list(refusals)
    closed: list[Closed] = []
    if not refusals:
        return closed  # no transaction: on SQLite every one takes the write lock
    with engine.begin() as conn:
        for job, code, reason in refusals:
            if reap_job(conn, job, reason, error_code=code):
                closed.append(Closed(job.id, job.account_id, code, reason))
    return closed


def job_left_open_by_run(jobs: Iterable[Job], run_id: str, tagged_job_id: uuid.UUID | None) -> Job | None:
    """The job a finished run leaves open, if any.

    A run owns a row it holds (``running`` with its run id), or the ``pending`` row it was
    launched for and never claimed. A row another run has since claimed is not this run's to close.
    """
    for job in jobs:
        if job.status == JobStatus.RUNNING and job.run_id == run_id:
            return job
        if job.status == JobStatus.PENDING and job.id == tagged_job_id and job.run_id in (None, run_id):
            return job
    return None


def close_job_of_ended_run(
    engine: sa.Engine, run_id: str, tagged_job_id: uuid.UUID | None, reason: str
) -> Closed | None:
    """A run ended (failed, canceled) without closing its job: mark it failed. One query if nothing to do."""
    with engine.begin() as conn:
        job = job_left_open_by_run(q.open_jobs_of_run(conn, run_id, tagged_job_id), run_id, tagged_job_id)
        if job is None:
            return None
        if job.status == JobStatus.PENDING:
            # The run never claimed the row: name it on the row and in the event all the same.
            q.attach_run(conn, job.id, run_id)
            job = dataclasses.replace(job, run_id=run_id)
            reason = f"the run ended before the sync started: {reason}"
        if not reap_job(conn, job, reason, error_code=RUN_DIED):
            return None
        return Closed(job.id, job.account_id, RUN_DIED, reason)


def close_jobs_of_ended_batch(engine: sa.Engine, run_id: str, reason: str) -> tuple[int, list[Closed]]:
    """A batch run ended: the rows it reserved and never started go back to the queue (they did
    nothing wrong), the one it was syncing fails like any run's. Returns (released, closed)."""
    closed: list[Closed] = []
    with engine.begin() as conn:
        released = batch_queries.release(conn, [run_id])
        for job in q.open_jobs_of_run(conn, run_id, None):
            if job.status == JobStatus.RUNNING and reap_job(conn, job, reason, error_code=RUN_DIED):
                closed.append(Closed(job.id, job.account_id, RUN_DIED, reason))
    return released, closed


def stale_jobs(engine: sa.Engine, kinds: Iterable[str], stale_after: timedelta, now: datetime) -> list[Job]:
    with engine.connect() as conn:
        return q.stale_running_jobs(conn, list(kinds), now - stale_after)


def reap_stale_jobs(
    engine: sa.Engine, stale: Iterable[Job], run_states: Mapping[str, str], stale_after: timedelta
) -> list[Closed]:
    """Fail running jobs with no heartbeat for ``stale_after`` whose run is over or unknown.

    A run Dagster still reports active is left alone however quiet it is: run monitoring
    (max runtime, worker health checks) ends it, and then the failure sensor or this reaper
    closes the row. Failing a live run's row here would let it write a second outcome later.
    """
    closed = []
    quiet = f"{int(stale_after.total_seconds())} s"
    for job in stale:
        state = run_states.get(job.run_id or "", RunState.MISSING)
        if state == RunState.ACTIVE:
            continue
        if state == RunState.MISSING:
            reason = f"no heartbeat for over {quiet} and its run {job.run_id} is unknown to Dagster"
        else:
            reason = f"no heartbeat for over {quiet} and its run {job.run_id} has ended"
        with engine.begin() as conn:
            if reap_job(conn, job, reason, error_code=RUN_DIED):
                closed.append(Closed(job.id, job.account_id, RUN_DIED, reason))
    return closed
