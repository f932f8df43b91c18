"""Telling a database outage from a database that refuses writes, and riding out the outage.

A restart, a failover, a network blip or ``too many connections`` is over in seconds to
minutes: the run waits with backoff and carries on (``database_unavailable``, retryable).
A read-only database or a full disk will not heal by waiting a minute: the run stops at once
with a clear message (``database_unwritable``). Everything else stays what it was (usually
``internal``, a bug).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

import psycopg
import sqlalchemy as sa

from monolyth_pipelines import settings
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.google.retry import Backoff, RetryEvent, call_with_retries

T = TypeVar("T")

# SQLSTATEs of a server that is gone, going or not taking sessions; the whole class 08 is
# "connection exception".
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_UNWRITABLE_SQLSTATES = frozenset({"25006", "53100"})  # read-only transaction, disk full
_UNAVAILABLE_TEXT = (
    "too many connections",
    "too many clients",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "terminating connection",
    "server closed the connection",
    "connection refused",
    "could not connect",
    "connection is closed",
    "connection already closed",
    "connection is lost",
    "consuming input failed",
    "ssl connection has been closed",
)
_UNWRITABLE_TEXT = (
    "read-only transaction",
    "readonly database",
    "read-only database",
    "database or disk is full",
    "no space left on device",
    "could not extend file",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the DBAPI error SQLAlchemy wrapped, and their causes, each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                stack.append(nxt)


def _text(exc: BaseException) -> str:
    return str(exc).lower()


def is_unwritable(exc: BaseException) -> bool:
    for err in _chain(exc):
        if isinstance(err, psycopg.Error) and err.sqlstate in _UNWRITABLE_SQLSTATES:
            return True
        if isinstance(err, psycopg.Error | sqlite3.Error | sa.exc.DBAPIError) and any(
            t in _text(err) for t in _UNWRITABLE_TEXT
        ):
            return True
    return False


def is_unavailable(exc: BaseException) -> bool:
    """A lost or refused connection: waiting and reconnecting can help."""
    if is_unwritable(exc):
        return False
    for err in _chain(exc):
        if isinstance(err, sa.exc.DBAPIError) and err.connection_invalidated:
            return True
        if isinstance(err, sa.exc.DisconnectionError | sa.exc.InterfaceError | sa.exc.PendingRollbackError):
            return True
        if isinstance(err, sa.exc.TimeoutError):  # no connection free in the pool in time
            return True
        if isinstance(err, psycopg.InterfaceError):
            return True
        if isinstance(err, psycopg.OperationalError):
            state = err.sqlstate
            # No SQLSTATE: the failure happened on the wire (connect refused, socket closed).
            if state is None or state.startswith("08") or state in _UNAVAILABLE_SQLSTATES:
                return True
        if isinstance(err, psycopg.Error | sa.exc.OperationalError) and any(
            t in _text(err) for t in _UNAVAILABLE_TEXT
        ):
            return True
    return False


def database_error(exc: BaseException) -> SyncError | None:
    """``exc`` as a ``database_unavailable`` / ``database_unwritable`` error, or None if it is neither."""
    if isinstance(exc, SyncError):
        return None
    # The DBAPI error alone: SQLAlchemy's text carries the statement and its parameters, which
    # may hold row data or tokens.
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    summary = f"{type(cause).__name__}: {str(cause).strip()}"
    if is_unwritable(exc):
        return SyncError(
            ErrorCode.DATABASE_UNWRITABLE,
            "the app database refuses writes (read-only or out of space); nothing more was "
            f"written: {summary}",
        )
    if is_unavailable(exc):
        return SyncError(
            ErrorCode.DATABASE_UNAVAILABLE,
            f"lost or could not open the connection to the app database: {summary}",
            retryable=True,
        )
    return None


def database_backoff() -> Backoff:
    """How long a run waits for the database to come back before giving the step to Dagster."""
    base, cap, attempts = settings.database_retry()
    return Backoff(base=base, cap=cap, max_attempts=attempts)


def with_database_retries(
    fn: Callable[[], T],
    *,
    policy: Backoff,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> T:
    """``fn()`` (one transaction), retried while the database is unavailable.

    Only outages are retried; any other error propagates unchanged, so callers keep their own
    handling of Google errors and bugs. ``fn`` must be safe to run again after a failed commit.
    """
    return call_with_retries(fn, policy=policy, classify=database_error, on_retry=on_retry)


def retried_transaction(
    engine: sa.Engine,
    write: Callable[[sa.Connection], T],
    *,
    policy: Backoff,
    on_retry: Callable[[RetryEvent], None] | None = None,
    reset: Callable[[], None] = lambda: None,
    begin: Callable[[sa.Engine], AbstractContextManager[sa.Connection]] | None = None,
) -> T:
    """``write`` in one transaction (``begin(engine)``, else ``engine.begin()``), written again
    after a lost connection; ``reset`` undoes what a failed try changed outside the database
    (counters, a refreshed token) before the next one."""

    def attempt() -> T:
        try:
            with (begin or sa.Engine.begin)(engine) as conn:
                return write(conn)
        except Exception:
            reset()
            raise

    return with_database_retries(attempt, policy=policy, on_retry=on_retry)
