"""The queue a batch run pulls from: pending jobs of accounts already synced once, reserved a few at
a time by the run that will sync them (``run_id`` set, status still ``pending``).

A reservation only says which batch run will try a row; the claim (``jobs.start_job``) and the
page fence still decide who holds an account, so a UI run that takes a reserved row first simply
wins it and the batch skips it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa

from monolyth_pipelines.store.jobs import Job
from monolyth_pipelines.store.schema import AccountStatus, JobStatus, connector_accounts, connector_jobs

# Rows first syncs come from: an account's first sync is a full listing and goes to a run of its own.
FIRST_SYNC = "first_sync"


def _synced_before() -> sa.ColumnElement[bool]:
    """The job's account has a completed job of the same kind (an incremental sync is likely)."""
    earlier = connector_jobs.alias("earlier")
    return (
        sa.select(sa.literal(1))
        .where(
            earlier.c.account_id == connector_jobs.c.account_id,
            earlier.c.kind == connector_jobs.c.kind,
            earlier.c.status == JobStatus.COMPLETED.value,
        )
        .exists()
    )


def batchable() -> sa.ColumnElement[bool]:
    """What a batch run takes: a job of an account synced before that is not its first sync. The
    one rule, read by the sensor (``pending_requests``) and by ``reserve``."""
    return sa.and_(
        _synced_before(),
        # requested_by is JSON: compared in Python would need the rows; NULL-safe in both dialects.
        sa.func.coalesce(connector_jobs.c.meta_json["requested_by"].as_string(), "") != FIRST_SYNC,
    )


def _batchable_pending(kind: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        connector_jobs.c.kind == kind,
        connector_jobs.c.status == JobStatus.PENDING.value,
        connector_jobs.c.run_id.is_(None),
        batchable(),
        connector_jobs.c.account_id.in_(
            sa.select(connector_accounts.c.id).where(
                connector_accounts.c.status == AccountStatus.CONNECTED.value
            )
        ),
    )


def reserve(conn: sa.Connection, kind: str, run_id: str, limit: int) -> list[Job]:
    """Reserve the oldest ``limit`` unreserved batchable jobs for ``run_id``, in one statement.

    Postgres: ``FOR UPDATE SKIP LOCKED``, so two batch runs reserving at once take different rows
    instead of waiting on each other. SQLite: the single writer serialises the two statements.
    """
    candidates = (
        sa.select(connector_jobs.c.id)
        .where(_batchable_pending(kind))
        .order_by(connector_jobs.c.created_at, connector_jobs.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=connector_jobs)
    # A CTE, evaluated once: as an IN (subquery) Postgres may rescan the subquery per row, and
    # with SKIP LOCKED each rescan finds other rows, so the LIMIT would not hold.
    chosen = candidates.cte("chosen")
    rows = conn.execute(
        connector_jobs.update()
        .where(
            connector_jobs.c.id == chosen.c.id,
            connector_jobs.c.status == JobStatus.PENDING.value,
            connector_jobs.c.run_id.is_(None),
        )
        .values(run_id=run_id)
        .returning(*connector_jobs.c)
    ).all()
    return sorted((Job(**row._mapping) for row in rows), key=lambda job: (job.created_at, str(job.id)))


def release(conn: sa.Connection, run_ids: Collection[str], job_ids: Sequence[uuid.UUID] = ()) -> int:
    """Hand reservations of these runs (only ``job_ids`` of them, if given) back to the queue."""
    if not run_ids:
        return 0
    query = connector_jobs.update().where(
        connector_jobs.c.status == JobStatus.PENDING.value, connector_jobs.c.run_id.in_(list(run_ids))
    )
    if job_ids:
        query = query.where(connector_jobs.c.id.in_(list(job_ids)))
    return conn.execute(query.values(run_id=None)).rowcount


def reservations(conn: sa.Connection, kinds: Sequence[str]) -> dict[str, int]:
    """Reserved pending rows by the run that reserved them."""
    if not kinds:
        return {}
    rows = conn.execute(
        sa.select(connector_jobs.c.run_id, sa.func.count())
        .where(
            connector_jobs.c.kind.in_(list(kinds)),
            connector_jobs.c.status == JobStatus.PENDING.value,
            connector_jobs.c.run_id.is_not(None),
        )
        .group_by(connector_jobs.c.run_id)
    )
    return {run_id: count for run_id, count in rows}


def providers_synced_before(conn: sa.Connection, kinds_by_provider: Mapping[str, str]) -> set[str]:
    """Providers with a connected account that has a completed job: those a standby batch run
    can serve (one short query per provider, stopping at the first such account)."""
    found = set()
    for provider, kind in kinds_by_provider.items():
        hit = conn.execute(
            sa.select(sa.literal(1))
            .select_from(
                connector_jobs.join(
                    connector_accounts, connector_accounts.c.id == connector_jobs.c.account_id
                )
            )
            .where(
                connector_jobs.c.kind == kind,
                connector_jobs.c.status == JobStatus.COMPLETED.value,
                connector_accounts.c.provider == provider,
                connector_accounts.c.status == AccountStatus.CONNECTED.value,
            )
            .limit(1)
        ).first()
        if hit is not None:
            found.add(provider)
    return found
