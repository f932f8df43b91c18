"""The provider-independent run lifecycle, without Dagster or Google."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store import events, jobs
from monolyth_pipelines.sync.refusals import AccountBusy
from monolyth_pipelines.sync.run import RunIdentity, SyncRun, reap_job
from tests.store.helpers import new_account


def _run(engine: sa.Engine, account, run_id: str) -> SyncRun:  # type: ignore[no-untyped-def]
    identity = RunIdentity(account_id=account, provider="google_drive", kind="drive_import", run_id=run_id)
    return SyncRun(engine, identity, settings_meta={})


def test_a_run_declared_dead_that_finishes_later_does_not_overwrite_the_outcome(engine: sa.Engine) -> None:
    account = new_account(engine)
    run = _run(engine, account, "run-1")
    job = run.start()
    with engine.begin() as conn:
        assert reap_job(conn, jobs.get_job(conn, job.id), "looked dead")  # type: ignore[arg-type]
    run.complete()
    with engine.connect() as conn:
        closed = jobs.get_job(conn, job.id)
        logged = [e["event"] for e in events.events_for(conn, account_id=account)]
    assert closed is not None and closed.status == "failed" and closed.last_error.startswith("run_died")
    assert logged == ["connector_sync_started", "connector_sync_failed"]


def test_a_dead_holder_is_taken_over_and_a_live_one_is_not(engine: sa.Engine) -> None:
    account = new_account(engine)
    first = _run(engine, account, "run-1")
    held = first.start()

    alive = _run(engine, account, "run-2")
    alive.is_run_alive = lambda run_id: True
    with pytest.raises(AccountBusy) as refused:
        alive.start()
    assert str(held.id) in refused.value.message and "run run-1" in refused.value.message

    second = _run(engine, account, "run-3")
    second.is_run_alive = lambda run_id: False
    taken = second.start()
    assert taken.id != held.id and taken.status == "running"
    with engine.connect() as conn:
        assert jobs.get_job(conn, held.id).status == "failed"  # type: ignore[union-attr]


def test_a_run_handed_a_closed_job_gets_its_own_and_leaves_the_outcome_alone(engine: sa.Engine) -> None:
    # A re-execution from the Dagster UI copies the old run's tags, job id included.
    account = new_account(engine)
    first = _run(engine, account, "run-1")
    failed = first.start()
    with engine.begin() as conn:
        jobs.finish_job(conn, failed.id, "failed", last_error="google_unavailable: down")
    identity = RunIdentity(
        account_id=account, provider="google_drive", kind="drive_import", run_id="run-2", job_id=failed.id
    )
    again = SyncRun(engine, identity, settings_meta={})
    fresh = again.start()
    again.complete()
    assert fresh.id != failed.id
    with engine.connect() as conn:
        assert jobs.get_job(conn, failed.id).status == "failed"  # type: ignore[union-attr]
        assert jobs.get_job(conn, fresh.id).status == "completed"  # type: ignore[union-attr]
