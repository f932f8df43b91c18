"""The set-based queries the sensors and schedules run: one statement per tick, never one per account.

Each function is a single SQL statement, so the cost of a tick does not grow with the number of
round trips, only with the rows it returns (see bench/orchestration.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from monolyth_pipelines.store import batch_queries, dialect
from monolyth_pipelines.store.jobs import OPEN_STATUSES, Job
from monolyth_pipelines.store.schema import (
    AccountStatus,
    JobStatus,
    connector_accounts,
    connector_jobs,
    new_uuid,
)
from monolyth_pipelines.store.timeutil import utcnow


@dataclass(frozen=True)
class ConnectedAccount:
    id: uuid.UUID
    provider: str
    has_job: bool  # any connector_jobs row of the provider's kind, whatever its status


@dataclass(frozen=True)
class PendingRequest:
    """A pending connector_jobs row with what the Sync-now sensor must know about its account."""

    job: Job
    provider: str | None  # None: the account row is gone (cannot happen with the FK, kept for safety)
    account_status: str | None
    batchable: bool = False  # a batch run may take it (store/batch_queries.batchable)


@dataclass(frozen=True)
class RequestedJob:
    id: uuid.UUID
    account_id: uuid.UUID


def _kind_of_provider(kinds_by_provider: Mapping[str, str]) -> sa.ColumnElement[str]:
    return sa.case(
        {provider: kind for provider, kind in kinds_by_provider.items()},
        value=connector_accounts.c.provider,
    )


def connected_accounts(conn: sa.Connection, kinds_by_provider: Mapping[str, str]) -> list[ConnectedAccount]:
    """Every connected account of these providers, and whether it ever had a job of its kind."""
    if not kinds_by_provider:
        return []
    has_job = (
        sa.select(sa.literal(1))
        .where(
            connector_jobs.c.account_id == connector_accounts.c.id,
            connector_jobs.c.kind == _kind_of_provider(kinds_by_provider),
        )
        .exists()
    )
    rows = conn.execute(
        sa.select(connector_accounts.c.id, connector_accounts.c.provider, has_job.label("has_job"))
        .where(
            connector_accounts.c.provider.in_(list(kinds_by_provider)),
            connector_accounts.c.status == AccountStatus.CONNECTED.value,
        )
        .order_by(connector_accounts.c.created_at, connector_accounts.c.id)
    )
    return [ConnectedAccount(id=r.id, provider=r.provider, has_job=bool(r.has_job)) for r in rows]


def request_syncs(
    conn: sa.Connection,
    *,
    provider: str,
    kind: str,
    requested_by: str,
    last_job_before: datetime | None = None,
    account_ids: Sequence[uuid.UUID] | None = None,
) -> list[RequestedJob]:
    """Insert a pending job for each connected account of ``provider`` that is due, in one statement.

    Due means no open job of ``kind`` and, with ``last_job_before``, no job of ``kind`` created at
    or after it; without it, no job of ``kind`` ever (the account's first sync). A row the app
    inserts concurrently wins: the partial unique index turns our duplicate into a no-op.
    """
    now = utcnow()
    blocking = sa.or_(
        connector_jobs.c.status.in_(OPEN_STATUSES),
        sa.true() if last_job_before is None else connector_jobs.c.created_at >= last_job_before,
    )
    busy = (
        sa.select(sa.literal(1))
        .where(
            connector_jobs.c.account_id == connector_accounts.c.id,
            connector_jobs.c.kind == kind,
            blocking,
        )
        .exists()
    )
    due = sa.select(
        new_uuid(),
        connector_accounts.c.id,
        sa.literal(kind, sa.Text),
        sa.literal(JobStatus.PENDING.value, sa.Text),
        sa.literal(0, sa.Integer),
        sa.literal({"requested_by": requested_by}, connector_jobs.c.meta_json.type),
        sa.literal(now, connector_jobs.c.created_at.type),
        sa.literal(now, connector_jobs.c.updated_at.type),
    ).where(
        connector_accounts.c.provider == provider,
        connector_accounts.c.status == AccountStatus.CONNECTED.value,
        ~busy,
    )
    if account_ids is not None:
        due = due.where(connector_accounts.c.id.in_(list(account_ids)))
    stmt = (
        dialect.insert(conn, connector_jobs)
        .from_select(
            ["id", "account_id", "kind", "status", "attempts", "meta_json", "created_at", "updated_at"], due
        )
        .on_conflict_do_nothing()
        .returning(connector_jobs.c.id, connector_jobs.c.account_id)
    )
    return [RequestedJob(id=r.id, account_id=r.account_id) for r in conn.execute(stmt)]


def pending_requests(conn: sa.Connection, kinds: Sequence[str], limit: int) -> list[PendingRequest]:
    """The oldest pending jobs of these kinds, each with its account's provider and status."""
    if not kinds:
        return []
    rows = conn.execute(
        sa.select(
            connector_jobs,
            connector_accounts.c.provider.label("account_provider"),
            connector_accounts.c.status.label("account_status"),
            batch_queries.batchable().label("batchable"),
        )
        .select_from(
            connector_jobs.outerjoin(
                connector_accounts, connector_accounts.c.id == connector_jobs.c.account_id
            )
        )
        .where(connector_jobs.c.status == JobStatus.PENDING.value, connector_jobs.c.kind.in_(list(kinds)))
        .order_by(connector_jobs.c.created_at, connector_jobs.c.id)
        .limit(limit)
    )
    found = []
    for row in rows:
        mapping = dict(row._mapping)
        provider = mapping.pop("account_provider")
        status = mapping.pop("account_status")
        batchable = bool(mapping.pop("batchable"))
        found.append(
            PendingRequest(job=Job(**mapping), provider=provider, account_status=status, batchable=batchable)
        )
    return found


def stale_running_jobs(conn: sa.Connection, kinds: Sequence[str], heartbeat_before: datetime) -> list[Job]:
    """Running jobs of these kinds whose heartbeat (``updated_at``) is older than the cutoff."""
    if not kinds:
        return []
    rows = conn.execute(
        sa.select(connector_jobs)
        .where(
            connector_jobs.c.status == JobStatus.RUNNING.value,
            connector_jobs.c.kind.in_(list(kinds)),
            connector_jobs.c.updated_at < heartbeat_before,
        )
        .order_by(connector_jobs.c.updated_at)
    )
    return [Job(**row._mapping) for row in rows]


def open_jobs_of_run(conn: sa.Connection, run_id: str, job_id: uuid.UUID | None) -> list[Job]:
    """Open jobs a Dagster run holds (``run_id``) or was launched for (its job-id tag)."""
    held = connector_jobs.c.run_id == run_id
    rows = conn.execute(
        sa.select(connector_jobs).where(
            connector_jobs.c.status.in_(OPEN_STATUSES),
            sa.or_(held, connector_jobs.c.id == job_id) if job_id is not None else held,
        )
    )
    return [Job(**row._mapping) for row in rows]


def attach_run(conn: sa.Connection, job_id: uuid.UUID, run_id: str) -> bool:
    """Record which run a pending job was handed to, so a failure before the claim names the run."""
    result = conn.execute(
        connector_jobs.update()
        .where(
            connector_jobs.c.id == job_id,
            connector_jobs.c.status == JobStatus.PENDING.value,
            connector_jobs.c.run_id.is_(None),
        )
        .values(run_id=run_id)
    )
    return result.rowcount == 1


def count_accounts(conn: sa.Connection, provider: str, status: str) -> int:
    """How many accounts of ``provider`` are in ``status`` (a tick says how many it skipped)."""
    return conn.execute(
        sa.select(sa.func.count())
        .select_from(connector_accounts)
        .where(connector_accounts.c.provider == provider, connector_accounts.c.status == status)
    ).scalar_one()
