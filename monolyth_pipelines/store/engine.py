"""Creating SQLAlchemy engines for the app database (Postgres in production, SQLite on a laptop)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from monolyth_pipelines import settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option: on SQLite, this connection's transactions only read (a plain deferred BEGIN,
# a WAL snapshot, no write lock); writes need the default BEGIN IMMEDIATE.
SQLITE_READ_ONLY = "monolyth_sqlite_read_only"


def normalise_url(url: str) -> str:
    """Route plain ``postgresql://`` / ``postgres://`` URLs to psycopg 3, the only driver we ship."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> sa.Engine:
    """An engine for ``url``, else ``MONOLYTH_DATABASE_URL``, else the embedded SQLite file."""
    url = normalise_url(url or settings.database_url())
    # A failed statement's message then names no bound value: titles, subjects, content and
    # tokens are parameters, and error text ends up in logs and Dagster's event log.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        sa.event.listen(engine, "connect", _configure_sqlite)
        # pysqlite's own transaction handling defers BEGIN, which breaks SAVEPOINTs and lets two
        # writers interleave; emitting BEGIN ourselves gives real transactions.
        sa.event.listen(engine, "begin", _begin_sqlite)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        # Small: Dagster's own storage opens many connections to the same server.
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 5)
    return sa.create_engine(url, **kwargs)


def _begin_sqlite(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(SQLITE_READ_ONLY) else "BEGIN IMMEDIATE")


def _configure_sqlite(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def redacted_url(url: str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    return sa.make_url(normalise_url(url)).render_as_string(hide_password=True)
