"""The must-shows end to end: real sensor daemon, run queue, run monitoring, run workers, the
Google API emulator, and the app database, on SQLite (+ Dagster SQLite storage) and on Postgres
(+ dagster-postgres storage)."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.defs.partitions import TAG_JOB_ID, TAG_PROVIDER
from monolyth_pipelines.store import jobs
from monolyth_pipelines.store.schema import AccountStatus, JobStatus, connector_files, connector_jobs
from tests.orchestration.conftest import Google
from tests.orchestration.deployment import Deployment, deployment
from tests.orchestration.helpers import all_jobs, events_of, get_job, sync_now

SUPPORTED_SHARE = 0.6  # roughly: the emulator's corpus is ~60% Docs/Sheets/Slides/PDFs


def live_ids(engine: sa.Engine, account_id: uuid.UUID) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(connector_files.c.external_id)
                .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
                .order_by(connector_files.c.external_id)
            ).scalars()
        )


def file_rows(engine: sa.Engine, account_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(connector_files)
            .where(connector_files.c.account_id == account_id)
        ).scalar_one()


def events_named(engine: sa.Engine, account_id: uuid.UUID, name: str) -> list[dict]:
    return events_of(engine, account_id, name)


def test_connect_then_sync_now_runs_exactly_once_and_completes(
    inline: Deployment, google: Google, app_env: sa.Engine
) -> None:
    engine = app_env
    person = google.account("ada@example.com", files=60)
    account = google.connect(engine, person)

    # Connecting: the partition appears and the first sync is requested and queued, once.
    inline.tick(2)
    assert inline.instance.get_dynamic_partitions("google_drive_accounts") == [str(account)]
    [first_job] = all_jobs(engine, account)
    [run] = inline.runs()
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags[TAG_JOB_ID] == str(first_job.id)
    assert run.tags[TAG_PROVIDER] == "google_drive"
    assert run.tags["dagster/partition"] == str(account)
    assert run.tags["dagster/run_key"] == str(first_job.id)

    # A "Sync now" click while that job is pending joins it: still one job, one run.
    assert sync_now(engine, account) is None
    inline.tick(2)
    assert len(inline.runs()) == 1

    assert inline.dequeue() == [run.run_id]
    assert inline.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
    job = get_job(engine, first_job.id)
    assert (job.status, job.attempts, job.run_id, job.last_error) == (
        JobStatus.COMPLETED,
        1,
        run.run_id,
        None,
    )
    stored = live_ids(engine, account)
    assert len(stored) > 60 * SUPPORTED_SHARE / 2
    assert [e["run_id"] for e in events_named(engine, account, "connector_sync_started")] == [run.run_id]
    assert [e["run_id"] for e in events_named(engine, account, "connector_sync_completed")] == [run.run_id]
    inline.tick(2)
    assert len(inline.runs()) == 1, "a completed job is never run again"

    # The next click is a new job and exactly one new run (the provider's batch run, since the
    # account was synced before), incremental, with nothing duplicated.
    second = sync_now(engine, account)
    assert second is not None
    inline.tick(2)
    [_, again] = inline.runs()
    assert again.job_name == "google_drive_batch_sync"
    assert inline.dequeue() == [again.run_id]
    job = get_job(engine, second)
    assert (job.status, job.run_id) == (JobStatus.COMPLETED, again.run_id)
    assert job.meta_json["counters"]["mode"] == "incremental"
    assert live_ids(engine, account) == stored
    assert file_rows(engine, account) == len(stored)
    assert events_named(engine, account, "connector_sync_failed") == []


@pytest.mark.slow
def test_one_run_per_account_at_a_time_in_the_run_queue(
    workers: Deployment, google: Google, app_env: sa.Engine
) -> None:
    engine = app_env
    slow = google.account("slow@example.com", files=40)
    other = google.account("other@example.com", files=10)
    # files.list answers slowly for this account, so its run is still going at the next dequeue
    # (with room for a loaded machine, where two sensor ticks can take several seconds).
    google.emu.faults.latency(15.0, endpoint="drive.files.list", account=slow.email)
    busy = google.connect(engine, slow)
    workers.tick(2)
    [first] = workers.runs()
    assert workers.dequeue() == [first.run_id]
    workers.wait_for(lambda: all_jobs(engine, busy)[0].status == JobStatus.RUNNING, what="first run to claim")

    # A second run of the same partition (as the UI's "Materialize" would create) and a run of
    # another account, both queued while the first is in progress.
    same_partition = workers.instance.create_run(
        job_name=first.job_name,
        run_id=None,
        run_config=first.run_config,
        resolved_op_selection=None,
        step_keys_to_execute=None,
        status=dg.DagsterRunStatus.QUEUED,
        tags={"dagster/partition": first.tags["dagster/partition"], TAG_PROVIDER: "google_drive"},
        root_run_id=None,
        parent_run_id=None,
        job_snapshot=workers.instance.get_job_snapshot(first.job_snapshot_id),
        execution_plan_snapshot=workers.instance.get_execution_plan_snapshot(
            first.execution_plan_snapshot_id
        ),
        parent_job_snapshot=None,
        remote_job_origin=first.remote_job_origin,
        job_code_origin=first.job_code_origin,
        asset_selection=first.asset_selection,
        asset_check_selection=None,
        op_selection=None,
        asset_graph=workers.workspace.create_request_context().asset_graph,
    )
    other_account = google.connect(engine, other)
    workers.tick(2)
    [other_run] = workers.runs(**{TAG_JOB_ID: str(all_jobs(engine, other_account)[0].id)})

    assert workers.instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.STARTED
    launched = workers.dequeue()
    assert launched == [other_run.run_id], "the same account's second run waits; another account's does not"
    assert workers.instance.get_run_by_id(same_partition.run_id).status == dg.DagsterRunStatus.QUEUED

    assert workers.launcher.wait(first.run_id) == 0
    workers.launcher.wait(other_run.run_id)
    assert workers.dequeue() == [same_partition.run_id]
    assert workers.launcher.wait(same_partition.run_id) == 0

    # Both runs of the account completed, one after the other: two jobs, never two open at once.
    history = all_jobs(engine, busy)
    assert [j.status for j in history] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
    assert history[0].finished_at <= history[1].started_at
    assert {j.run_id for j in history} == {first.run_id, same_partition.run_id}


@pytest.mark.slow
def test_a_killed_run_is_marked_failed_and_the_next_run_completes_without_loss(
    workers: Deployment, google: Google, app_env: sa.Engine
) -> None:
    engine = app_env
    person = google.account("kill@example.com", files=4000)  # ~2,400 supported: three 1,000-item pages
    google.emu.faults.latency(1.0, endpoint="drive.files.list", account=person.email)
    account = google.connect(engine, person)
    workers.tick(2)
    [doomed] = workers.runs()
    workers.dequeue()

    def first_page_committed() -> bool:
        with engine.connect() as conn:
            job = jobs.get_job(conn, uuid.UUID(doomed.tags[TAG_JOB_ID]))
        return bool(job and job.meta_json and job.meta_json.get("counters", {}).get("pages", 0) >= 1)

    workers.wait_for(first_page_committed, timeout=90, what="the first page to be committed")
    workers.launcher.kill(doomed.run_id)
    killed_job = get_job(engine, uuid.UUID(doomed.tags[TAG_JOB_ID]))
    assert killed_job.status == JobStatus.RUNNING, "nothing in the dead process could record its end"
    partial = file_rows(engine, account)
    assert 0 < partial < 2400 * 0.9

    # Run monitoring sees the dead worker and fails the run; the failure sensor fails the job.
    workers.monitor()
    assert workers.instance.get_run_by_id(doomed.run_id).status == dg.DagsterRunStatus.FAILURE
    workers.tick()
    killed_job = get_job(engine, killed_job.id)
    assert killed_job.status == JobStatus.FAILED
    assert killed_job.last_error.startswith("run_died: Dagster run failed")
    [failed] = events_named(engine, account, "connector_sync_failed")
    assert failed["run_id"] == doomed.run_id
    assert failed["payload"]["error_code"] == "run_died"

    # The next run resumes the sweep and completes.
    google.emu.faults.clear()
    retry_job = sync_now(engine, account)
    assert retry_job is not None
    workers.tick()
    [resumed] = workers.runs(**{TAG_JOB_ID: str(retry_job)})
    workers.dequeue()
    assert workers.launcher.wait(resumed.run_id) == 0
    done = get_job(engine, retry_job)
    assert done.status == JobStatus.COMPLETED
    assert done.meta_json["counters"]["inserted"] == file_rows(engine, account) - partial

    # No loss, no duplicates: the same Google account synced cleanly into a second account row.
    twin = google.connect(engine, person)
    workers.tick(2)
    [clean] = workers.runs(**{"dagster/partition": str(twin)})
    workers.dequeue()
    assert workers.launcher.wait(clean.run_id) == 0
    assert live_ids(engine, account) == live_ids(engine, twin)
    assert file_rows(engine, account) == len(live_ids(engine, account))
    assert len(events_named(engine, account, "connector_sync_failed")) == 1


def test_a_transient_failure_is_retried_and_the_job_completes_with_two_attempts(
    inline: Deployment, google: Google, app_env: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = app_env
    monkeypatch.setenv("MONOLYTH_RETRY_MAX_ATTEMPTS", "2")
    person = google.account("flaky@example.com", files=30)
    # Both in-call attempts of the first files.list answer 500: attempt 1 of the step gives up.
    outage = google.emu.faults.script("drive.files.list", calls=[1, 2], status=500)
    account = google.connect(engine, person)

    # Every write to connector_jobs, to prove the row never passed through failed.
    statuses: list[str] = []

    def watch(conn, cursor, statement, parameters, context, executemany) -> None:
        if "UPDATE connector_jobs" in statement:
            params = parameters if isinstance(parameters, dict) else {}
            statuses.extend(str(v) for k, v in params.items() if k.startswith("status") and v is not None)

    sa.event.listen(sa.Engine, "before_cursor_execute", watch)
    try:
        inline.tick(2)
        [run] = inline.runs()
        inline.dequeue()
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", watch)

    assert outage.fired == 2
    assert inline.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
    retried = [
        e
        for e in inline.instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
    ]
    assert len(retried) == 1
    [job] = all_jobs(engine, account)
    assert (job.status, job.attempts, job.last_error) == (JobStatus.COMPLETED, 2, None)
    assert "failed" not in statuses
    assert events_named(engine, account, "connector_sync_failed") == []
    assert len(events_named(engine, account, "connector_sync_started")) == 1
    assert len(events_named(engine, account, "connector_sync_completed")) == 1
    inline.tick()  # the failure sensors see a successful run: nothing to do
    assert get_job(engine, job.id).status == JobStatus.COMPLETED


def test_an_auth_failure_is_not_retried_and_stops_scheduling(
    inline: Deployment, google: Google, app_env: sa.Engine
) -> None:
    engine = app_env
    person = google.account("revoked@example.com", files=20)
    account = google.connect(engine, person)
    google.emu.revoke(person)
    inline.tick(2)
    [run] = inline.runs()
    inline.dequeue()

    assert inline.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    step_events = {
        e.dagster_event.event_type_value for e in inline.instance.all_logs(run.run_id) if e.dagster_event
    }
    assert "STEP_UP_FOR_RETRY" not in step_events
    [job] = all_jobs(engine, account)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert job.last_error.startswith("auth_revoked")
    [failed] = events_named(engine, account, "connector_sync_failed")
    assert failed["payload"]["error_code"] == "auth_revoked"

    # The failure sensor sees the failed run but the asset already closed the row: no second event.
    inline.tick()
    assert len(events_named(engine, account, "connector_sync_failed")) == 1
    # The account is now in error: a Sync-now click is refused, not run.
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM connector_accounts")).scalar_one()
    assert status == AccountStatus.ERROR
    click = sync_now(engine, account)
    inline.tick()
    assert len(inline.runs()) == 1
    assert get_job(engine, click).status == JobStatus.FAILED
    with engine.connect() as conn:
        open_jobs = conn.execute(
            sa.select(sa.func.count()).select_from(connector_jobs).where(connector_jobs.c.status == "pending")
        ).scalar_one()
    assert open_jobs == 0


def test_gmail_behind_its_flag_runs_through_the_same_pathway(
    dagster_pg_url: str | None, google: Google, app_env: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = app_env
    monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "int_gmail")
    person = google.emu.add_account("mail@example.com", gmail_threads=20)
    account = google.connect(engine, person, "gmail")
    with deployment(dagster_pg_url, mode="inline", module="tests.orchestration.gmail_location") as dep:
        dep.tick(2)
        assert dep.instance.get_dynamic_partitions("gmail_accounts") == [str(account)]
        [run] = dep.runs()
        assert (run.job_name, run.tags[TAG_PROVIDER]) == ("gmail_sync", "gmail")
        dep.dequeue()
        assert dep.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
    [job] = all_jobs(engine, account)
    assert (job.kind, job.status, job.run_id) == ("gmail_import", JobStatus.COMPLETED, run.run_id)
