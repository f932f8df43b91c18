"""One writer per account, enforced by the database: a compare-and-set claim under an account
lock, and a fence on every write of a run."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store import events, files, jobs
from monolyth_pipelines.store.errors import JobBusyError, JobLostError
from monolyth_pipelines.store.schema import connector_files
from monolyth_pipelines.sync.pages import PageWrite
from monolyth_pipelines.sync.refusals import AccountBusy
from monolyth_pipelines.sync.run import RunIdentity, SyncRun
from tests.store.helpers import make_records, new_account


def _run(engine: sa.Engine, account: uuid.UUID, run_id: str, *, alive: bool = True) -> SyncRun:
    identity = RunIdentity(account_id=account, provider="google_drive", kind="drive_import", run_id=run_id)
    return SyncRun(engine, identity, settings_meta={}, is_run_alive=lambda _run_id: alive)


def _stored(engine: sa.Engine, account: uuid.UUID) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(connector_files.c.external_id).where(connector_files.c.account_id == account)
        )
        return {r.external_id for r in rows}


def test_the_claim_is_a_compare_and_set_on_status_run_account_and_kind(engine: sa.Engine) -> None:
    account, other = new_account(engine), new_account(engine)
    with engine.begin() as conn:
        pending = jobs.create_job(conn, account, "drive_import")
        held = jobs.start_job(conn, account_id=account, kind="drive_import", run_id="run-1", attempt=1)
        assert held.id == pending and held.run_id == "run-1"
        # The same run again (a step retry) keeps its claim.
        again = jobs.start_job(conn, account_id=account, kind="drive_import", run_id="run-1", attempt=2)
        assert again.id == pending and again.attempts == 2
    with engine.begin() as conn, pytest.raises(JobBusyError) as busy:
        jobs.start_job(
            conn, account_id=account, kind="drive_import", run_id="run-2", attempt=1, job_id=pending
        )
    assert busy.value.job_id == pending and busy.value.run_id == "run-1"
    # A job id of another account is never claimed for this one.
    with engine.begin() as conn:
        own = jobs.start_job(
            conn, account_id=other, kind="drive_import", run_id="run-3", attempt=1, job_id=pending
        )
    assert own.id != pending and own.account_id == other
    with engine.connect() as conn:
        assert jobs.get_job(conn, pending).run_id == "run-1"  # type: ignore[union-attr]


def test_two_runs_claiming_one_account_at_once_end_with_one_holder(engine: sa.Engine) -> None:
    account = new_account(engine)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def claim(run_id: str) -> None:
        run = _run(engine, account, run_id)
        barrier.wait()
        try:
            run.start()
            outcomes[run_id] = "held"
        except AccountBusy:
            outcomes[run_id] = "busy"
        except Exception as exc:  # pragma: no cover - the failure this test exists to catch
            outcomes[run_id] = f"{type(exc).__name__}"

    threads = [threading.Thread(target=claim, args=(f"run-{i}",)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["busy", "held"]
    with engine.connect() as conn:
        (job,) = jobs.jobs_for_account(conn, account)
        started = [
            e for e in events.events_for(conn, account_id=account) if e["event"] == "connector_sync_started"
        ]
    assert job.status == "running" and outcomes[job.run_id or ""] == "held"
    assert len(started) == 1, "the refused run logged nothing"


def test_a_run_whose_job_was_taken_over_writes_nothing_more(engine: sa.Engine) -> None:
    account = new_account(engine)
    first = _run(engine, account, "run-1")
    first.start()
    first.commit_page(PageWrite(records=make_records(2, prefix="a")))

    # run-1 looks dead to run-2 (its process was lost), so run-2 takes the account over.
    second = _run(engine, account, "run-2", alive=False)
    second.start()

    with pytest.raises(JobLostError):
        first.commit_page(PageWrite(records=make_records(3, prefix="b")))
    with pytest.raises(JobLostError), engine.begin() as conn:
        first.heartbeat(conn)
    assert _stored(engine, account) == {"a0", "a1"}, "the fenced page rolled back whole"

    # Completing or failing the lost job records nothing over the new holder's row.
    first.complete()
    with engine.connect() as conn:
        held = jobs.open_job(conn, account, "drive_import")
        logged = [e["event"] for e in events.events_for(conn, account_id=account)]
    assert held is not None and held.run_id == "run-2" and held.status == "running"
    assert "connector_sync_completed" not in logged


def test_failed_statements_do_not_quote_their_parameters(engine: sa.Engine) -> None:
    account = new_account(engine)
    record = make_records(1, title="Q3 layoffs plan")[0]
    with engine.begin() as conn:
        files.upsert_files(conn, account, "google_drive", [record])
    row = {
        "id": uuid.uuid4(),
        "account_id": account,
        "provider": "google_drive",
        "external_id": record.external_id,
        "title": "Q3 layoffs plan (copy)",
        "content_hash": "x",
    }
    with pytest.raises(sa.exc.IntegrityError) as failed, engine.begin() as conn:
        conn.execute(connector_files.insert(), row)
    assert "Q3 layoffs plan" not in str(failed.value)
    assert "hidden" in str(failed.value)
