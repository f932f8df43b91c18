"""connector_sync_state: incremental cursors and in-progress full sweeps, per account and corpus."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from monolyth_pipelines.store.schema import connector_sweep_seen, connector_sync_state
from monolyth_pipelines.store.timeutil import utcnow


@dataclass(frozen=True)
class SyncState:
    account_id: uuid.UUID
    corpus: str
    cursor: str | None
    sweep_cursor: str | None
    sweep_page_token: str | None
    sweep_id: uuid.UUID | None
    sweep_reconcile: bool
    last_full_sync_at: datetime | None
    updated_at: datetime
    last_checked_at: datetime | None = None  # set by the change probe (store/probe_queries.py)

    @property
    def sweep_in_progress(self) -> bool:
        return self.sweep_id is not None


class CursorRegressionError(RuntimeError):
    """A cursor older than the stored one was about to be written."""


def _position(cursor: str | None) -> int | None:
    # Drive page tokens and Gmail history ids are decimal counters today; if Google ever sends
    # something else we cannot order it and accept it as given.
    return int(cursor) if cursor is not None and cursor.isdigit() else None


def get_state(conn: sa.Connection, account_id: uuid.UUID, corpus: str) -> SyncState | None:
    row = conn.execute(
        sa.select(connector_sync_state).where(
            connector_sync_state.c.account_id == account_id, connector_sync_state.c.corpus == corpus
        )
    ).one_or_none()
    return SyncState(**row._mapping) if row else None


def list_states(conn: sa.Connection, account_id: uuid.UUID) -> list[SyncState]:
    rows = conn.execute(
        sa.select(connector_sync_state).where(connector_sync_state.c.account_id == account_id)
    )
    return [SyncState(**row._mapping) for row in rows]


def _write(conn: sa.Connection, account_id: uuid.UUID, corpus: str, **values: object) -> None:
    values["updated_at"] = utcnow()
    updated = conn.execute(
        connector_sync_state.update()
        .where(connector_sync_state.c.account_id == account_id, connector_sync_state.c.corpus == corpus)
        .values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(connector_sync_state.insert().values(account_id=account_id, corpus=corpus, **values))


def begin_sweep(
    conn: sa.Connection, account_id: uuid.UUID, corpus: str, *, sweep_cursor: str, reconcile: bool
) -> uuid.UUID:
    """Start a full listing. ``sweep_cursor`` was fetched before it, so nothing changed meanwhile is lost."""
    replaced = get_state(conn, account_id, corpus)
    if replaced is not None and replaced.sweep_id is not None:
        conn.execute(
            connector_sweep_seen.delete().where(connector_sweep_seen.c.sweep_id == replaced.sweep_id)
        )
    sweep_id = uuid.uuid4()
    _write(
        conn,
        account_id,
        corpus,
        sweep_cursor=sweep_cursor,
        sweep_page_token=None,
        sweep_id=sweep_id,
        sweep_reconcile=reconcile,
    )
    return sweep_id


def save_sweep_page(
    conn: sa.Connection, account_id: uuid.UUID, corpus: str, next_page_token: str | None
) -> None:
    """Record listing progress in the same transaction as the page's rows, so a crash resumes here."""
    _write(conn, account_id, corpus, sweep_page_token=next_page_token)


def finish_sweep(conn: sa.Connection, account_id: uuid.UUID, corpus: str) -> None:
    state = get_state(conn, account_id, corpus)
    assert state is not None and state.sweep_cursor is not None
    _write(
        conn,
        account_id,
        corpus,
        cursor=state.sweep_cursor,
        sweep_cursor=None,
        sweep_page_token=None,
        sweep_id=None,
        sweep_reconcile=False,
        last_full_sync_at=utcnow(),
    )


def advance_cursor(conn: sa.Connection, account_id: uuid.UUID, corpus: str, cursor: str) -> None:
    """Store a newer incremental cursor; it never moves backwards."""
    state = get_state(conn, account_id, corpus)
    old, new = _position(state.cursor if state else None), _position(cursor)
    if old is not None and new is not None and new < old:
        raise CursorRegressionError(f"cursor for {corpus} would move back from {old} to {new}")
    _write(conn, account_id, corpus, cursor=cursor)


def drop_cursor(conn: sa.Connection, account_id: uuid.UUID, corpus: str) -> None:
    """Forget a cursor Google rejected; the next run sweeps and reconciles."""
    _write(conn, account_id, corpus, cursor=None)
