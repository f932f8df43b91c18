from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store import events, jobs
from monolyth_pipelines.store.errors import InvalidRecordError, JobConflictError
from monolyth_pipelines.store.schema import activity_log, connector_jobs
from tests.store.helpers import new_account


def _job_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(connector_jobs)).scalar_one()


def test_a_job_with_an_unknown_status_rejects_the_batch(engine: sa.Engine) -> None:
    accounts = [new_account(engine) for _ in range(3)]
    batch = [jobs.NewJob(a, "drive_import") for a in accounts[:2]] + [
        jobs.NewJob(accounts[2], "drive_import", status="queued")
    ]
    with pytest.raises(InvalidRecordError, match="status") as info, engine.begin() as conn:
        jobs.create_jobs(conn, batch)
    assert info.value.field == "status"
    assert _job_count(engine) == 0


def test_the_database_itself_refuses_an_unknown_status(engine: sa.Engine) -> None:
    account = new_account(engine)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(connector_jobs.insert().values(account_id=account, kind="drive_import", status="queued"))


def test_two_sync_requests_for_one_account_coalesce(engine: sa.Engine) -> None:
    account = new_account(engine)
    with engine.begin() as conn:
        first, created = jobs.request_sync(conn, account, "drive_import")
        assert created
    with engine.begin() as conn:
        second, created_again = jobs.request_sync(conn, account, "drive_import")
    assert (second, created_again) == (first, False)
    with pytest.raises(JobConflictError), engine.begin() as conn:
        jobs.create_job(conn, account, "drive_import")
    assert _job_count(engine) == 1


def test_job_lifecycle_claims_the_pending_row(engine: sa.Engine) -> None:
    account = new_account(engine)
    with engine.begin() as conn:
        pending = jobs.create_job(conn, account, "drive_import")
        running = jobs.start_job(conn, account_id=account, kind="drive_import", run_id="run-1", attempt=1)
        assert running.id == pending and running.status == "running" and running.started_at is not None
        with pytest.raises(JobConflictError):
            jobs.start_job(
                conn, account_id=account, kind="drive_import", run_id="run-2", attempt=1, job_id=pending
            )
        assert jobs.finish_job(conn, pending, "completed", meta={"file_count": 3})
        # The first outcome recorded wins: a late failure report does not overwrite it.
        assert not jobs.finish_job(conn, pending, "failed", last_error="late")
        done = jobs.get_job(conn, pending)
        assert done and done.status == "completed" and done.finished_at and done.last_error is None
        # A closed job frees the account for the next request.
        assert jobs.request_sync(conn, account, "drive_import")[1]


def test_events_carry_exactly_the_spec_keys(engine: sa.Engine) -> None:
    account = new_account(engine)
    with engine.begin() as conn:
        events.log_event(
            conn,
            "connector_sync_started",
            {"provider": "google_drive", "account_id": account, "run_id": "r1"},
        )
        with pytest.raises(InvalidRecordError, match="payload"):
            events.log_event(
                conn, "connector_sync_started", {"provider": "google_drive", "account_id": account}
            )
        with pytest.raises(InvalidRecordError, match="event"):
            events.log_event(conn, "connector_sync_exploded", {"account_id": account})
    with engine.connect() as conn:
        rows = conn.execute(sa.select(activity_log)).all()
    assert len(rows) == 1
    assert rows[0].payload == {"provider": "google_drive", "account_id": str(account), "run_id": "r1"}
    assert (
        rows[0].run_id == "r1" and rows[0].account_id == account and isinstance(rows[0].owner_id, uuid.UUID)
    )


def test_refreshed_tokens_never_overwrite_a_reconnect(engine: sa.Engine) -> None:
    from monolyth_pipelines.store import accounts

    account = new_account(engine)
    with engine.begin() as conn:
        accounts.save_token_json(
            conn, account, {"token": "a", "refresh_token": "r1"}, expected_refresh_token="x"
        )
        assert accounts.get_token_json(conn, account) == {"token": "x"}  # helper's token_json, untouched
        conn.execute(
            accounts.connector_accounts.update()
            .where(accounts.connector_accounts.c.id == account)
            .values(token_json={"token": "t1", "refresh_token": "r1"})
        )
        assert accounts.save_token_json(
            conn, account, {"token": "t2", "refresh_token": "r1"}, expected_refresh_token="r1"
        )
        # The user reconnects (new grant r2) while a run that started with r1 refreshes again.
        conn.execute(
            accounts.connector_accounts.update()
            .where(accounts.connector_accounts.c.id == account)
            .values(token_json={"token": "n1", "refresh_token": "r2"})
        )
        wrote = accounts.save_token_json(
            conn, account, {"token": "t3", "refresh_token": "r1"}, expected_refresh_token="r1"
        )
        assert not wrote
        assert accounts.get_token_json(conn, account) == {"token": "n1", "refresh_token": "r2"}
