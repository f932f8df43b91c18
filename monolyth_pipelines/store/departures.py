"""Disconnecting many accounts in one transaction: the writes ``accounts/disconnect.py`` makes for
one account (without ``--purge``), set-based, for a Workspace domain's departed users.

Per thousand accounts: one UPDATE of connector_accounts (tokens to SQL NULL, ``disconnected``),
one UPDATE of their open jobs (``failed``, RETURNING the rows it closed, so a job its run finished
meanwhile gets no failed event), and one insert per kind of event. The caller stops the push
channels first (while the grants are there) and the runs holding the open jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.errors import safe_message
from monolyth_pipelines.store import events
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.jobs import OPEN_STATUSES
from monolyth_pipelines.store.schema import AccountStatus, JobStatus, connector_accounts, connector_jobs
from monolyth_pipelines.store.timeutil import utcnow

# Ids per IN list: under SQLite's and Postgres's bound-parameter limits with room to spare.
_IDS_PER_STATEMENT = 1000


@dataclass
class Disconnected:
    accounts: list[uuid.UUID] = field(default_factory=list)  # newly disconnected (an event each)
    failed_jobs: list[uuid.UUID] = field(default_factory=list)


def _chunks(ids: Sequence[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _IDS_PER_STATEMENT):
        yield unique[start : start + _IDS_PER_STATEMENT]


def open_run_ids(conn: sa.Connection, account_ids: Sequence[uuid.UUID]) -> list[str]:
    """The Dagster runs holding (or handed) the accounts' open jobs: to terminate before the jobs
    are failed, as a single disconnect does."""
    j = connector_jobs.c
    found: list[str] = []
    for chunk in _chunks(account_ids):
        found += conn.execute(
            sa.select(j.run_id).where(
                j.account_id.in_(chunk), j.status.in_(OPEN_STATUSES), j.run_id.is_not(None)
            )
        ).scalars()
    return found


def disconnect_accounts(
    conn: sa.Connection, account_ids: Sequence[uuid.UUID], *, error_code: str, reason: str
) -> Disconnected:
    """Each account: tokens cleared, ``disconnected`` (reason and message cleared), its open jobs
    failed with ``error_code: reason`` (a ``connector_sync_failed`` for each one a run was started
    for) and, unless it was disconnected already, one ``connector_account_disconnected``."""
    a, j = connector_accounts.c, connector_jobs.c
    done = Disconnected()
    failed: list[tuple[uuid.UUID | None, dict[str, Any]]] = []
    gone: list[tuple[uuid.UUID | None, dict[str, Any]]] = []
    last_error = safe_message(f"{error_code}: {reason}")
    now = utcnow()
    for chunk in _chunks(account_ids):
        read = sa.select(a.id, a.owner_id, a.provider, a.status).where(a.id.in_(chunk))
        before = {r.id: r for r in conn.execute(read)}
        conn.execute(
            connector_accounts.update()
            .where(a.id.in_(chunk))
            .values(
                token_json=sa.null(),
                status=AccountStatus.DISCONNECTED.value,
                status_reason=None,
                status_message=None,
                updated_at=now,
            )
        )
        closed = conn.execute(
            connector_jobs.update()
            .where(j.account_id.in_(chunk), j.status.in_(OPEN_STATUSES))
            .values(status=JobStatus.FAILED.value, finished_at=now, updated_at=now, last_error=last_error)
            .returning(j.id, j.account_id, j.run_id)
        ).all()
        done.failed_jobs += [job.id for job in closed]
        # As reap_job: a job no run was started for is closed, but it is no failed sync.
        failed += [
            (
                before[job.account_id].owner_id,
                {
                    "provider": before[job.account_id].provider,
                    "account_id": job.account_id,
                    "run_id": job.run_id,
                    "error_code": error_code,
                    "error_msg": safe_message(reason),
                },
            )
            for job in closed
            if job.run_id
        ]
        newly = [row for row in before.values() if row.status != AccountStatus.DISCONNECTED]
        done.accounts += [row.id for row in newly]
        gone += [(row.owner_id, {"provider": row.provider, "account_id": row.id}) for row in newly]
    events.log_events(conn, Event.SYNC_FAILED, failed, at=now)
    # After the failed events, as one disconnect logs them (a reader orders by created_at).
    events.log_events(conn, Event.ACCOUNT_DISCONNECTED, gone, at=now + timedelta(microseconds=1))
    return done
