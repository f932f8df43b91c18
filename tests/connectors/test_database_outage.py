"""The app database going away mid-sync: Postgres terminates the run's connections
(``pg_terminate_backend``, what a restart or failover does to them) and the run rides it out."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import events, files, jobs
from monolyth_pipelines.store.engine import make_engine
from tests.connectors.harness import DriveHarness, comparable, expected_rows

pytestmark = pytest.mark.postgres_only


class Backends:
    """Terminates the connections of the run under test, found by their application_name."""

    def __init__(self, url: str) -> None:
        self.name = f"sync_{uuid.uuid4().hex[:10]}"
        self.run_url = str(sa.make_url(url).update_query_dict({"application_name": self.name}))
        self.admin = make_engine(url, poolclass=sa.pool.NullPool)
        self.killed = 0

    def kill(self) -> int:
        with self.admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            ).scalar_one()
        assert killed, "the run had no connection to terminate"
        self.killed += 1
        return int(killed)


@pytest.fixture
def outage(fresh_db_url: str) -> Iterator[Backends]:
    backends = Backends(fresh_db_url)
    yield backends
    backends.admin.dispose()


@pytest.fixture
def drive(
    make_drive: Callable[[int], DriveHarness], outage: Backends, monkeypatch: pytest.MonkeyPatch
) -> DriveHarness:
    monkeypatch.setenv("MONOLYTH_DB_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("MONOLYTH_DB_RETRY_CAP_SECONDS", "0.2")
    harness = make_drive(2500)  # two listing pages of in-scope files
    return dataclasses.replace(harness, db_url=outage.run_url)


def kill_on_calls(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, calls: set[int], outage: Backends, *, after: bool
) -> None:
    """On the given calls of ``module.name``, terminate the run's connections: after the call
    (the rest of that transaction and its commit meet a dead connection) or before it."""
    original = getattr(module, name)
    seen = {"n": 0}

    def hooked(*args: Any, **kwargs: Any) -> Any:
        seen["n"] += 1
        hit = seen["n"] in calls
        if hit and not after:
            outage.kill()
        result = original(*args, **kwargs)
        if hit and after:
            outage.kill()
        return result

    monkeypatch.setattr(module, name, hooked)


def logged(drive: DriveHarness) -> list[dict[str, Any]]:
    with drive.engine.connect() as conn:
        return [
            e
            for e in events.events_for(conn, account_id=drive.account_id)
            if e["event"].startswith("connector_sync")
        ]


def test_connections_killed_mid_page_and_at_completion_are_retried_inside_the_run(
    drive: DriveHarness, outage: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill_on_calls(monkeypatch, files, "upsert_files", {2}, outage, after=True)
    kill_on_calls(monkeypatch, jobs, "finish_job", {1}, outage, after=False)
    result, job = drive.sync()
    assert outage.killed == 2
    assert result.success and job.status == "completed"
    assert job.attempts == 1 and job.last_error is None, "healed inside the attempt"
    expected = expected_rows(drive.drive.files(), DriveLimits())
    assert comparable(drive.rows()) == expected
    counters = job.meta_json["counters"]
    assert counters["database_retries"] == 2
    # The page whose commit died was written again, and counted once.
    assert counters["inserted"] == len(expected)
    assert counters["seen"] == counters["inserted"] + counters["skipped_total"]
    assert [e["event"] for e in logged(drive)] == ["connector_sync_started", "connector_sync_completed"]
    completed = logged(drive)[-1]["payload"]
    assert completed["run_id"] == result.dagster_run.run_id and completed["file_count"] == len(expected)


def test_an_outage_longer_than_the_run_waits_is_retried_by_the_step_retry_policy(
    drive: DriveHarness, outage: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONOLYTH_DB_RETRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("MONOLYTH_STEP_RETRY_WAIT_SECONDS", "1")
    # Page 2 meets a dead connection twice: the attempt gives up, Dagster retries the step.
    kill_on_calls(monkeypatch, files, "upsert_files", {2, 3}, outage, after=True)
    result, job = drive.sync()
    assert result.success and job.status == "completed" and job.attempts == 2
    expected = expected_rows(drive.drive.files(), DriveLimits())
    assert comparable(drive.rows()) == expected
    counters = job.meta_json["counters"]
    assert counters["inserted"] == len(expected), "the retry resumed after the committed page"
    events_ = logged(drive)
    assert [e["event"] for e in events_] == ["connector_sync_started", "connector_sync_completed"]
    completed = events_[-1]["payload"]
    # The whole job: both attempts and the step retry's wait, not only the last attempt.
    whole_job_ms = (job.finished_at - job.started_at).total_seconds() * 1000
    assert completed["duration_ms"] >= 1000
    assert abs(completed["duration_ms"] - whole_job_ms) < 500


def test_a_failure_is_recorded_once_the_database_answers_again(
    drive: DriveHarness, outage: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    drive.emulator.faults.script("drive.files.list", calls=[2], status=403, reason="insufficientPermissions")
    kill_on_calls(monkeypatch, jobs, "finish_job", {1}, outage, after=False)
    result, job = drive.sync()
    assert outage.killed == 1
    assert not result.success
    assert job.status == "failed" and job.finished_at is not None
    assert job.last_error.startswith("insufficient_permissions:"), "the sync's error, not the outage"
    assert 0 < len(drive.rows()) == job.meta_json["counters"]["inserted"], "the committed first page stays"
    events_ = logged(drive)
    assert [e["event"] for e in events_] == ["connector_sync_started", "connector_sync_failed"]
    failed = events_[-1]["payload"]
    assert failed["run_id"] == result.dagster_run.run_id == job.run_id
    assert failed["error_code"] == "insufficient_permissions"


def test_a_database_that_never_comes_back_fails_as_database_unavailable(
    drive: DriveHarness, outage: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONOLYTH_DB_RETRY_MAX_ATTEMPTS", "2")
    # Every page commit meets a dead connection, in every attempt.
    kill_on_calls(monkeypatch, files, "upsert_files", set(range(1, 100)), outage, after=True)
    result, job = drive.sync()
    assert not result.success
    assert job.status == "failed" and job.attempts == 3
    assert job.last_error.startswith("database_unavailable: lost or could not open the connection")
    assert drive.rows() == {}, "no page was half-written"
    events_ = logged(drive)
    assert [e["event"] for e in events_] == ["connector_sync_started", "connector_sync_failed"]
    assert events_[-1]["payload"]["error_code"] == "database_unavailable"
    assert events_[-1]["payload"]["run_id"] == job.run_id
