"""Which database errors are an outage to wait out, which a refusal to write, and which neither."""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.google.errors import ErrorCode, SyncError
from monolyth_pipelines.google.retry import Backoff
from monolyth_pipelines.store import accounts
from monolyth_pipelines.store.engine import make_engine
from monolyth_pipelines.store.outage import database_error, with_database_retries
from monolyth_pipelines.sync.refusals import classify_run_error


def wrapped(orig: Exception, cls: type[sa.exc.DBAPIError] = sa.exc.OperationalError) -> sa.exc.DBAPIError:
    return cls("UPDATE connector_jobs SET meta_json = %(m)s", {"m": '{"token": "ya29.secret"}'}, orig)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(psycopg.errors.AdminShutdown("terminating connection due to administrator command")),
        wrapped(psycopg.errors.CannotConnectNow("the database system is shutting down")),
        wrapped(psycopg.errors.TooManyConnections("sorry, too many clients already")),
        wrapped(psycopg.OperationalError('FATAL: too many connections for role "app"')),
        wrapped(
            psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
        ),
        wrapped(psycopg.InterfaceError("the connection is closed"), sa.exc.InterfaceError),
        sa.exc.DisconnectionError("connection invalidated"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    ],
    ids=[
        "admin-shutdown",
        "shutting-down",
        "too-many-clients",
        "too-many-connections",
        "closed",
        "interface",
        "disconnection",
        "bare-psycopg",
    ],
)
def test_lost_or_refused_connections_are_database_unavailable_and_retryable(exc: Exception) -> None:
    error = classify_run_error(exc)
    assert error.code is ErrorCode.DATABASE_UNAVAILABLE and error.retryable
    # The statement and its parameters (row data, tokens) never reach the message.
    assert "ya29" not in error.message and "UPDATE" not in error.message


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(
            psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
            sa.exc.InternalError,
        ),
        wrapped(psycopg.errors.DiskFull("could not extend file: No space left on device")),
        wrapped(sqlite3.OperationalError("attempt to write a readonly database")),
        wrapped(sqlite3.OperationalError("database or disk is full")),
    ],
    ids=["pg-read-only", "pg-disk-full", "sqlite-read-only", "sqlite-full"],
)
def test_a_database_refusing_writes_is_a_permanent_clear_failure(exc: Exception) -> None:
    error = classify_run_error(exc)
    assert error.code is ErrorCode.DATABASE_UNWRITABLE and not error.retryable
    assert "refuses writes" in error.message


def test_other_database_errors_stay_internal() -> None:
    assert database_error(wrapped(sqlite3.OperationalError("no such table: connector_jobs"))) is None
    assert classify_run_error(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))).code is (
        ErrorCode.INTERNAL
    )


def test_a_refused_connection_to_a_real_server_is_database_unavailable() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing", poolclass=sa.pool.NullPool)
    with pytest.raises(sa.exc.OperationalError) as caught:
        engine.connect()
    assert classify_run_error(caught.value).code is ErrorCode.DATABASE_UNAVAILABLE


@pytest.mark.postgres_only
def test_a_read_only_postgres_session_is_database_unwritable(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        accounts.create_account(conn, owner_id=uuid.uuid4(), provider="gmail", token_json={})
    assert classify_run_error(caught.value).code is ErrorCode.DATABASE_UNWRITABLE


@pytest.mark.sqlite_only
def test_a_read_only_sqlite_file_is_database_unwritable(engine: sa.Engine, fresh_db_url: str) -> None:
    path = sa.make_url(fresh_db_url).database
    # Opened read-only by SQLite itself: file permissions do not bind root, who runs CI.
    read_only = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught, read_only.begin() as conn:
            accounts.create_account(conn, owner_id=uuid.uuid4(), provider="gmail", token_json={})
        assert classify_run_error(caught.value).code is ErrorCode.DATABASE_UNWRITABLE
    finally:
        read_only.dispose()


def test_retries_cover_outages_only_and_give_up_with_the_code() -> None:
    sleeps: list[float] = []
    policy = Backoff(base=0.1, cap=1, max_attempts=3, random=lambda: 1.0, sleep=sleeps.append)
    lost = wrapped(psycopg.errors.AdminShutdown("terminating connection"))
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise lost
        return "written"

    assert with_database_retries(flaky, policy=policy) == "written"
    assert sleeps == [0.1, 0.2]

    def bug() -> None:
        raise KeyError("not an outage")

    with pytest.raises(KeyError):
        with_database_retries(bug, policy=policy)

    def down() -> None:
        raise lost

    with pytest.raises(SyncError) as caught:
        with_database_retries(down, policy=policy)
    assert caught.value.code is ErrorCode.DATABASE_UNAVAILABLE and caught.value.__cause__ is lost
