"""Insights that tell the truth: refused runs are not failed runs, a change committed while a
build runs is rebuilt, and on SQLite a rebuild does not hold the write lock while it reads."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.defs import insights as insights_defs
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.insights.build import build_day
from monolyth_pipelines.store import insights as insights_store
from monolyth_pipelines.store import jobs
from monolyth_pipelines.store.schema import connector_jobs, insights_sync_runs_daily
from monolyth_pipelines.sync.closing import reap_job
from tests.store.helpers import new_account


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def _run(engine: sa.Engine, account: uuid.UUID, status: str, error: str | None = None) -> uuid.UUID:
    with engine.begin() as conn:
        job = jobs.start_job(
            conn, account_id=account, kind="drive_import", run_id=str(uuid.uuid4()), attempt=1
        )
        jobs.finish_job(conn, job.id, status, meta={"duration_ms": 1000}, last_error=error)
    return job.id


def _runs_row(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(insights_sync_runs_daily)).one()._mapping)


def test_refused_and_never_started_jobs_are_counted_apart_from_failed_runs(engine: sa.Engine) -> None:
    account = new_account(engine)
    _run(engine, account, "completed")
    _run(engine, account, "failed", "google_unavailable: Google API returned HTTP 503")
    # Refused by the settings, or by the mass-tombstone guard: no sync of its own.
    _run(engine, account, "failed", "bad_config: MAX_FILES_PER_RUN: must be at least 1, got 0")
    # "Sync now" while the account is disconnected: the pending job never started.
    with engine.begin() as conn:
        pending, _ = jobs.request_sync(conn, account, "drive_import")
        job = jobs.get_job(conn, pending)
        assert job is not None and job.started_at is None
        reap_job(conn, job, "the account was disconnected", error_code="account_disconnected")

    build_day(engine, datetime.now(UTC).date())
    row = _runs_row(engine)
    assert (row["runs_started"], row["runs_completed"], row["runs_failed"], row["runs_refused"]) == (
        3,
        1,
        1,
        2,
    )
    assert row["failure_rate"] == 0.5, "one of the two runs that really ran failed"
    assert row["failures_by_code"] == {"google_unavailable": 1}


def test_a_change_committed_after_the_builds_reads_but_before_its_materialisation_is_rebuilt(
    engine: sa.Engine, fresh_db_url: str, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = new_account(engine)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    late = _run(engine, account, "completed")
    with engine.begin() as conn:  # a run of yesterday
        conn.execute(
            connector_jobs.update()
            .where(connector_jobs.c.id == late)
            .values(
                started_at=datetime.combine(yesterday, datetime.min.time(), UTC) + timedelta(hours=23),
                finished_at=datetime.combine(yesterday, datetime.min.time(), UTC)
                + timedelta(hours=23, minutes=1),
                updated_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
    real_build = insights_defs.build_day

    def build_then_a_change_lands(*args: Any, **kwargs: Any) -> Any:
        built = real_build(*args, **kwargs)
        # The build has read its inputs; before Dagster records the materialisation, the reaper
        # (or a late run) changes a job of that day.
        with engine.begin() as conn:
            conn.execute(
                connector_jobs.update()
                .where(connector_jobs.c.id == late)
                .values(status="failed", last_error="run_died: reaped", updated_at=datetime.now(UTC))
            )
        return built

    monkeypatch.setattr(insights_defs, "build_day", build_then_a_change_lands)
    insights_defs.materialize_days([yesterday], instance=instance, database_url=fresh_db_url)
    monkeypatch.undo()

    with dg.build_sensor_context(
        instance=instance, resources={"db": DatabaseResource(url=fresh_db_url)}
    ) as ctx:
        requested = [r.partition_key for r in insights_defs.insights_refresh(ctx) or []]
    assert yesterday.isoformat() in requested, "the change the build did not read triggers a rebuild"


@pytest.mark.sqlite_only
def test_a_sqlite_rebuild_does_not_hold_the_write_lock_while_it_reads(
    engine: sa.Engine, fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = new_account(engine)
    _run(engine, account, "completed")
    path = sa.make_url(fresh_db_url).database
    assert path
    wrote: list[str] = []
    reading = insights_store.live_now_by_account

    def read_while_someone_writes(conn: sa.Connection) -> Any:
        # Another process's writer (a sync page) while the build reads: it must get in.
        def write() -> None:
            other = sqlite3.connect(path, timeout=1, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("UPDATE connector_jobs SET attempts = attempts + 1")
                other.execute("COMMIT")
                wrote.append("committed")
            except sqlite3.OperationalError as exc:
                wrote.append(str(exc))
            finally:
                other.close()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(10)
        return reading(conn)

    monkeypatch.setattr(insights_store, "live_now_by_account", read_while_someone_writes)
    build_day(engine, datetime.now(UTC).date())
    assert wrote == ["committed"]
    assert _runs_row(engine)["runs_completed"] == 1
