"""connector_jobs: the lifecycle pending → running → completed | failed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store.errors import InvalidRecordError, JobBusyError, JobConflictError, JobLostError
from monolyth_pipelines.store.schema import JobKind, JobStatus, connector_jobs
from monolyth_pipelines.store.timeutil import utcnow

OPEN_STATUSES = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    account_id: uuid.UUID
    kind: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    last_error: str | None
    meta_json: dict[str, Any] | None
    created_at: datetime
    run_id: str | None
    updated_at: datetime


@dataclass(frozen=True)
class NewJob:
    account_id: uuid.UUID
    kind: str
    status: str = JobStatus.PENDING
    meta_json: dict[str, Any] | None = None


def _validate(job: NewJob, index: int | None) -> None:
    if job.status not in {s.value for s in JobStatus}:
        raise InvalidRecordError("status", f"unknown job status {job.status!r}", index)
    if job.kind not in {k.value for k in JobKind}:
        raise InvalidRecordError("kind", f"unknown job kind {job.kind!r}", index)
    if not isinstance(job.account_id, uuid.UUID):
        raise InvalidRecordError("account_id", "must be a UUID", index)


def _is_open_job_conflict(exc: sa.exc.IntegrityError) -> bool:
    return "one_open_per_account_kind" in str(
        exc.orig
    ) or "connector_jobs.account_id, connector_jobs.kind" in str(exc.orig)


def create_jobs(conn: sa.Connection, jobs: Sequence[NewJob]) -> list[uuid.UUID]:
    """Insert jobs in one statement after validating all of them, so a bad row writes nothing."""
    for index, job in enumerate(jobs):
        _validate(job, index)
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "account_id": job.account_id,
            "kind": job.kind,
            "status": job.status,
            "attempts": 0,
            "meta_json": job.meta_json,
            "created_at": now,
            "updated_at": now,
        }
        for job in jobs
    ]
    if rows:
        try:
            with conn.begin_nested():
                conn.execute(connector_jobs.insert(), rows)
        except sa.exc.IntegrityError as exc:
            if _is_open_job_conflict(exc):
                raise JobConflictError(
                    "an open (pending or running) job already exists for this account and kind"
                ) from exc
            raise
    return [row["id"] for row in rows]


def create_job(
    conn: sa.Connection, account_id: uuid.UUID, kind: str, status: str = JobStatus.PENDING
) -> uuid.UUID:
    return create_jobs(conn, [NewJob(account_id=account_id, kind=kind, status=status)])[0]


def request_sync(conn: sa.Connection, account_id: uuid.UUID, kind: str) -> tuple[uuid.UUID, bool]:
    """What "Sync now" does: a pending job, or the already open one. Returns (job id, created)."""
    try:
        return create_job(conn, account_id, kind), True
    except JobConflictError:
        existing = open_job(conn, account_id, kind)
        if existing is None:  # it closed between the insert and this read
            return create_job(conn, account_id, kind), True
        return existing.id, False


def get_job(conn: sa.Connection, job_id: uuid.UUID) -> Job | None:
    row = conn.execute(sa.select(connector_jobs).where(connector_jobs.c.id == job_id)).one_or_none()
    return Job(**row._mapping) if row else None


def open_job(conn: sa.Connection, account_id: uuid.UUID, kind: str) -> Job | None:
    row = conn.execute(
        sa.select(connector_jobs).where(
            connector_jobs.c.account_id == account_id,
            connector_jobs.c.kind == kind,
            connector_jobs.c.status.in_(OPEN_STATUSES),
        )
    ).one_or_none()
    return Job(**row._mapping) if row else None


# ``start_job(current=...)`` unset: the function reads the row itself.
_UNREAD = object()


def lock_account(conn: sa.Connection, account_id: uuid.UUID) -> None:
    """Serialise job claims of one account until this transaction ends.

    Postgres: a transaction-scoped advisory lock keyed on the account. SQLite: the engine opens
    every transaction with ``BEGIN IMMEDIATE`` (store/engine.py), which already holds the
    database's write lock from the first statement, so there is nothing more to take.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": str(account_id)}
        )


def _pages_key(account_id: uuid.UUID) -> dict[str, str]:
    return {"key": f"pages:{account_id}"}


def share_account_pages(conn: sa.Connection, account_id: uuid.UUID) -> None:
    """A page of a run is being written: until this transaction ends, no purge of the account
    starts (Postgres: a shared advisory lock, taken before the page touches a row)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:key, 0))"), _pages_key(account_id)
        )


def stop_account_pages(conn: sa.Connection, account_id: uuid.UUID) -> None:
    """Wait for every page of the account in flight to end, and hold new ones off until this
    transaction ends: a purge then never meets a page's row locks in another order (no
    deadlock). SQLite's single writer gives the same order by itself."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), _pages_key(account_id)
        )


def start_job(
    conn: sa.Connection,
    *,
    account_id: uuid.UUID,
    kind: str,
    run_id: str,
    attempt: int,
    job_id: uuid.UUID | None = None,
    meta: dict[str, Any] | None = None,
    current: object = _UNREAD,
) -> Job:
    """Take a job to ``running`` for this run.

    With ``job_id`` (handed over by the Sync-now sensor) that row is claimed; otherwise, or when
    that row is already closed, the open pending row for the account is claimed, or a new one
    created. A closed row is never reopened. The claim is a compare-and-set (the row must still
    be ``pending``, or already this run's, for this account and kind), so two runs racing for
    one job end with exactly one holder; the loser gets ``JobBusyError``. It takes
    ``lock_account`` first, so the read-then-create of a new row cannot race either.

    ``current``: the row ``job_id`` names (else the open row), when the caller has just read it.
    """
    now = utcnow()
    lock_account(conn, account_id)
    if current is _UNREAD:
        job = get_job(conn, job_id) if job_id else open_job(conn, account_id, kind)
    else:
        job = current if isinstance(current, Job) else None
    if job is not None and (
        job.status in (JobStatus.COMPLETED, JobStatus.FAILED)
        or (job.account_id, job.kind) != (account_id, kind)
    ):
        # A closed job keeps its one outcome. A run handed a closed job (a re-execution from the
        # UI copies the old run's tags) gets a job of its own instead of failing or reopening it.
        job = open_job(conn, account_id, kind)
    job_id = create_job(conn, account_id, kind) if job is None else job.id
    row = conn.execute(
        connector_jobs.update()
        .where(
            connector_jobs.c.id == job_id,
            connector_jobs.c.account_id == account_id,
            connector_jobs.c.kind == kind,
            sa.or_(
                connector_jobs.c.status == JobStatus.PENDING.value,
                sa.and_(
                    connector_jobs.c.status == JobStatus.RUNNING.value, connector_jobs.c.run_id == run_id
                ),
            ),
        )
        .values(
            status=JobStatus.RUNNING.value,
            run_id=run_id,
            attempts=attempt,
            started_at=sa.func.coalesce(connector_jobs.c.started_at, now),
            finished_at=None,
            last_error=None,
            meta_json=meta,
            updated_at=now,
        )
        .returning(*connector_jobs.c)
    ).one_or_none()
    if row is None:
        holder = get_job(conn, job_id)
        assert holder is not None
        raise JobBusyError(holder.id, holder.run_id, holder.updated_at)
    return Job(**row._mapping)


def still_held(conn: sa.Connection, job_id: uuid.UUID, run_id: str) -> bool:
    """True when the job is still ``running`` under ``run_id``; also refreshes its heartbeat.

    An UPDATE, not a SELECT: on Postgres it locks the row until the caller's transaction ends,
    so a take-over waits for a page commit in flight and the next page sees it.
    """
    return (
        conn.execute(
            connector_jobs.update()
            .where(
                connector_jobs.c.id == job_id,
                connector_jobs.c.status == JobStatus.RUNNING.value,
                connector_jobs.c.run_id == run_id,
            )
            .values(updated_at=utcnow())
        ).rowcount
        == 1
    )


def assert_held(conn: sa.Connection, job_id: uuid.UUID, run_id: str) -> None:
    """The fence of every write a run makes: raise ``JobLostError`` (the caller's transaction
    then rolls back, writing nothing) unless the job is still this run's."""
    if not still_held(conn, job_id, run_id):
        raise JobLostError(f"job {job_id} is no longer running under run {run_id}; this run stops writing")


def update_meta(
    conn: sa.Connection, job_id: uuid.UUID, meta: dict[str, Any], *, run_id: str | None = None
) -> bool:
    """Store progress; with ``run_id``, only while the job is still running under that run."""
    query = connector_jobs.update().where(connector_jobs.c.id == job_id)
    if run_id is not None:
        query = query.where(
            connector_jobs.c.status == JobStatus.RUNNING.value, connector_jobs.c.run_id == run_id
        )
    return conn.execute(query.values(meta_json=meta, updated_at=utcnow())).rowcount == 1


def finish_job(
    conn: sa.Connection,
    job_id: uuid.UUID,
    status: str,
    *,
    meta: dict[str, Any] | None = None,
    last_error: str | None = None,
    run_id: str | None = None,
) -> bool:
    """Close a job; returns False if it was already closed (the first outcome recorded wins), or,
    with ``run_id``, if another run holds it now."""
    if status not in (JobStatus.COMPLETED, JobStatus.FAILED):
        raise InvalidRecordError("status", f"a job finishes as completed or failed, not {status!r}")
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "updated_at": now,
        "last_error": last_error,
    }
    if meta is not None:
        values["meta_json"] = meta
    query = connector_jobs.update().where(
        connector_jobs.c.id == job_id, connector_jobs.c.status.in_(OPEN_STATUSES)
    )
    if run_id is not None:
        query = query.where(connector_jobs.c.run_id == run_id)
    result = conn.execute(query.values(**values))
    return result.rowcount == 1


def jobs_for_account(conn: sa.Connection, account_id: uuid.UUID) -> list[Job]:
    rows = conn.execute(
        sa.select(connector_jobs)
        .where(connector_jobs.c.account_id == account_id)
        .order_by(connector_jobs.c.created_at)
    )
    return [Job(**row._mapping) for row in rows]


def last_completed_job(conn: sa.Connection, account_id: uuid.UUID, kind: str) -> Job | None:
    """The account's most recent completed job of ``kind`` (e.g. to see the settings it ran with)."""
    row = conn.execute(
        sa.select(connector_jobs)
        .where(
            connector_jobs.c.account_id == account_id,
            connector_jobs.c.kind == kind,
            connector_jobs.c.status == JobStatus.COMPLETED.value,
        )
        .order_by(connector_jobs.c.finished_at.desc(), connector_jobs.c.created_at.desc())
        .limit(1)
    ).one_or_none()
    return Job(**row._mapping) if row else None
