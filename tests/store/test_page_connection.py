"""The connection a run's pages share: every page its own transaction, a broken connection
replaced, and the pool getting it back with durable commits."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store import files
from monolyth_pipelines.store.dialect import PageConnection
from monolyth_pipelines.store.engine import make_engine
from monolyth_pipelines.store.schema import connector_files
from tests.store.helpers import make_records, new_account


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(connector_files)).scalar_one()


def test_each_page_commits_on_its_own_and_a_failed_one_writes_nothing(engine: sa.Engine) -> None:
    account = new_account(engine)
    pages = PageConnection(engine)
    try:
        with pages.transaction() as conn:
            files.upsert_files(conn, account, "google_drive", make_records(2, prefix="a"))
        assert _count(engine) == 2, "committed before the next page starts"
        with pytest.raises(RuntimeError), pages.transaction() as conn:
            files.upsert_files(conn, account, "google_drive", make_records(3, prefix="b"))
            raise RuntimeError("the page failed half-way")
        with pages.transaction() as conn:
            files.upsert_files(conn, account, "google_drive", make_records(1, prefix="c"))
    finally:
        pages.close()
    assert _count(engine) == 3


@pytest.mark.postgres_only
def test_postgres_pages_skip_the_wal_flush_and_the_pool_gets_durable_commits_back(fresh_db_url: str) -> None:
    engine = make_engine(fresh_db_url, pool_size=1, max_overflow=0)  # one connection: the same one
    try:
        pages = PageConnection(engine)
        with pages.transaction() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "off"
        pages.close()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    finally:
        engine.dispose()


@pytest.mark.postgres_only
def test_a_page_after_the_connection_died_runs_on_a_new_one(fresh_db_url: str, engine: sa.Engine) -> None:
    account = new_account(engine)
    pages = PageConnection(engine)
    try:
        with pages.transaction() as conn:
            files.upsert_files(conn, account, "google_drive", make_records(1, prefix="a"))
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with engine.begin() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(sa.exc.DBAPIError), pages.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")
        with pages.transaction() as conn:  # what SyncRun's retry does next
            files.upsert_files(conn, account, "google_drive", make_records(1, prefix="b"))
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid
    finally:
        pages.close()
    assert _count(engine) == 2
