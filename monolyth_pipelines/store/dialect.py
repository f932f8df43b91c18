"""What differs between the two databases the project runs on (SQLite, Postgres), in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for this connection."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported dialect {conn.dialect.name}")


class PageConnection:
    """The connection a run's page commits share, one transaction per page.

    A page's write is a handful of short statements, and while the fetch thread holds the GIL
    each round trip to the database can cost the writer milliseconds: the connection is kept
    from page to page (no pool check-out and pre-ping each time) and, on Postgres, commits
    without the WAL flush for its whole life (no ``SET LOCAL`` each page). Losing the last
    commits in a server crash only means fetching those pages again: a page's rows and the
    position that covers them commit together.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One page's transaction. After a failed one the connection is dropped: it may be
        broken, and a retry starts on a fresh one."""
        conn = self._conn if self._conn is not None else self._open()
        try:
            with conn.begin():
                yield conn
        except BaseException:
            self.close()
            raise

    def _open(self) -> sa.Connection:
        conn = self.engine.connect()
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET synchronous_commit TO OFF")
            conn.commit()
        self._conn = conn
        return conn

    def close(self) -> None:
        """Back to the pool as it came (commits durable again), or discarded if it broke."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.dialect.name == "postgresql" and not conn.invalidated:
                conn.rollback()
                conn.exec_driver_sql("RESET synchronous_commit")
                conn.commit()
        except Exception:  # whatever broke it, the error that got us here is the one to raise
            conn.invalidate()
        finally:
            conn.close()


def durable_commit(conn: sa.Connection) -> None:
    """This transaction's COMMIT waits for the WAL flush again (a ``PageConnection`` turns it
    off): for writes a server crash must not lose, such as a rotated refresh token."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO ON")
