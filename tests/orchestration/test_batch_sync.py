"""Batch runs end to end: the real sensor daemon and run queue, run workers (inline and child
processes), the emulator over HTTP, the app database on SQLite and on Postgres."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import create_run_for_test

from monolyth_pipelines.defs.automation import AutomationDefs
from monolyth_pipelines.defs.batch_sync import TAG_BATCH
from monolyth_pipelines.defs.local_run import materialize_account
from monolyth_pipelines.defs.partitions import TAG_JOB_ID
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.store import batch_queries
from monolyth_pipelines.store.schema import AccountStatus, JobStatus, connector_accounts
from monolyth_pipelines.sync import reaper
from monolyth_pipelines.sync.run import RunIdentity, SyncRun
from tests.orchestration.conftest import Google
from tests.orchestration.deployment import Deployment, deployment
from tests.orchestration.helpers import (
    add_finished_job,
    all_jobs,
    connect_account,
    events_of,
    get_job,
    now,
    sensor_named,
    sync_now,
    tick,
)

ASSET = dg.AssetKey("google_drive_files")


def first_syncs(dep: Deployment, google: Google, engine: sa.Engine, count: int) -> list[uuid.UUID]:
    accounts = [google.connect(engine, google.account(f"user{i}@example.com", files=6)) for i in range(count)]
    dep.tick(2)
    first = dep.runs()
    assert len(first) == count and all(TAG_JOB_ID in run.tags for run in first), "first syncs: a run each"
    while dep.dequeue():
        pass
    assert all(all_jobs(engine, a)[0].status == JobStatus.COMPLETED for a in accounts)
    return accounts


def batch_runs(dep: Deployment) -> list[dg.DagsterRun]:
    return [run for run in dep.runs() if TAG_BATCH in run.tags]


def test_sync_now_clicks_of_synced_accounts_share_one_run_and_each_keeps_its_own_record(
    inline: Deployment, google: Google, app_env: sa.Engine
) -> None:
    engine = app_env
    accounts = first_syncs(inline, google, engine, 3)
    clicks = {a: sync_now(engine, a) for a in accounts}

    inline.tick(1)
    [batch] = batch_runs(inline)
    assert batch.job_name == "google_drive_batch_sync"
    assert inline.dequeue() == [batch.run_id]
    assert inline.instance.get_run_by_id(batch.run_id).status == dg.DagsterRunStatus.SUCCESS

    for account, job_id in clicks.items():
        assert job_id is not None
        job = get_job(engine, job_id)
        assert (job.status, job.run_id, job.last_error) == (JobStatus.COMPLETED, batch.run_id, None)
        assert job.meta_json["counters"]["mode"] == "incremental"
        started = [e["run_id"] for e in events_of(engine, account, "connector_sync_started")]
        completed = [e["run_id"] for e in events_of(engine, account, "connector_sync_completed")]
        assert started[-1] == completed[-1] == batch.run_id and started.count(batch.run_id) == 1
        # The account's partition shows the batch's materialisation as its latest, with metadata.
        [record] = inline.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=ASSET, asset_partitions=[str(account)]), limit=1
        ).records
        assert record.run_id == batch.run_id
        metadata = record.asset_materialization.metadata
        assert metadata["job_id"].value == str(job_id) and metadata["mode"].value == "incremental"
    inline.tick(1)
    assert len(batch_runs(inline)) == 1, "nothing pending: no new batch"


def test_a_revoked_grant_in_a_batch_fails_only_that_accounts_job(
    inline: Deployment, google: Google, app_env: sa.Engine
) -> None:
    engine = app_env
    accounts = first_syncs(inline, google, engine, 3)
    google.emu.revoke("user1@example.com")
    clicks = [sync_now(engine, a) for a in accounts]

    inline.tick(1)
    [batch] = batch_runs(inline)
    inline.dequeue()
    assert inline.instance.get_run_by_id(batch.run_id).status == dg.DagsterRunStatus.SUCCESS
    statuses = [get_job(engine, j).status for j in clicks if j is not None]
    assert statuses == [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED], "in any order of syncs"
    failed = get_job(engine, clicks[1])
    assert failed.last_error is not None and failed.last_error.startswith("auth_revoked")
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(connector_accounts.c.status).where(connector_accounts.c.id == accounts[1])
        ).scalar_one()
    assert status == AccountStatus.ERROR
    [failure] = events_of(engine, accounts[1], "connector_sync_failed")
    assert failure["run_id"] == batch.run_id and failure["payload"]["error_code"] == "auth_revoked"


@pytest.mark.slow
def test_two_batch_processes_never_hold_the_same_account(
    dagster_pg_url: str | None, google: Google, app_env: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = app_env
    monkeypatch.setenv("MONOLYTH_SYNC_BATCH_RUNS", "2")
    monkeypatch.setenv("MONOLYTH_SYNC_BATCH_SIZE", "2")
    with deployment(dagster_pg_url, mode="subprocess") as dep:
        accounts = first_syncs_in_workers(dep, google, engine, 12)
        # Each sync answers slowly (18 s in all), so the second process starts while the first
        # is still pulling, even on a loaded machine.
        google.emu.faults.latency(1.5, endpoint="drive.changes.list")
        clicks = [sync_now(engine, a) for a in accounts]
        dep.tick(1)
        runs = batch_runs(dep)
        assert len(runs) == 2
        assert sorted(dep.dequeue()) == sorted(run.run_id for run in runs)
        for run in runs:
            assert dep.launcher.wait(run.run_id) == 0
        holders: dict[str, int] = {}
        for account, job_id in zip(accounts, clicks, strict=True):
            assert job_id is not None
            job = get_job(engine, job_id)
            assert job.status == JobStatus.COMPLETED
            holders[job.run_id or ""] = holders.get(job.run_id or "", 0) + 1
            starts = [e for e in events_of(engine, account, "connector_sync_started") if e["run_id"] != ""]
            assert len(starts) == 2, "the first sync and exactly one batch sync"
        names = {r: dep.instance.get_run_by_id(r).job_name for r in holders if dep.instance.get_run_by_id(r)}
        assert set(holders) == {run.run_id for run in runs}, f"each batch synced some: {holders} {names}"
        assert sum(holders.values()) == 12


def first_syncs_in_workers(dep: Deployment, google: Google, engine: sa.Engine, count: int) -> list[uuid.UUID]:
    accounts = [google.connect(engine, google.account(f"user{i}@example.com", files=4)) for i in range(count)]
    dep.tick(2)
    for _ in range(count):
        for run_id in dep.dequeue():
            assert dep.launcher.wait(run_id) == 0
    assert all(all_jobs(engine, a)[0].status == JobStatus.COMPLETED for a in accounts)
    return accounts


def test_a_ui_materialisation_of_a_partition_a_batch_holds_is_refused_and_writes_nothing(
    inline: Deployment, google: Google, app_env: sa.Engine
) -> None:
    engine = app_env
    [account] = first_syncs(inline, google, engine, 1)
    job_id = sync_now(engine, account)
    assert job_id is not None
    # A batch run has reserved and claimed the job and is mid-sync (its run is alive).
    holder = inline.instance.create_run_for_job(
        dg.JobDefinition(name="placeholder", graph_def=dg.GraphDefinition(name="placeholder")),
        run_id=None,
        status=dg.DagsterRunStatus.STARTED,
        tags={TAG_BATCH: "google_drive"},
    )
    with engine.begin() as conn:
        [reserved] = batch_queries.reserve(conn, "drive_import", holder.run_id, 10)
    assert reserved.id == job_id
    SyncRun(
        engine, RunIdentity(account, "google_drive", "drive_import", holder.run_id, job_id=job_id)
    ).start()

    result = materialize_account("google_drive", account, instance=inline.instance)
    assert not result.success
    assert get_job(engine, job_id).run_id == holder.run_id, "the batch still holds the job"
    assert len(all_jobs(engine, account)) == 2, "the refused run opened no job of its own"


def test_a_batch_that_died_hands_back_what_it_had_not_started(engine: sa.Engine) -> None:
    accounts = [connect_account(engine) for _ in range(3)]
    for account in accounts:
        done = sync_now(engine, account)
        assert done is not None
        with engine.begin() as conn:
            from monolyth_pipelines.store import jobs

            jobs.finish_job(conn, done, JobStatus.COMPLETED)
    clicks = [sync_now(engine, a) for a in accounts]
    with engine.begin() as conn:
        reserved = batch_queries.reserve(conn, "drive_import", "batch-run-1", 10)
    assert {j.id for j in reserved} == set(clicks)
    with engine.begin() as conn:
        assert batch_queries.reserve(conn, "drive_import", "batch-run-2", 10) == [], "reserved once"
    SyncRun(
        engine, RunIdentity(accounts[0], "google_drive", "drive_import", "batch-run-1", job_id=clicks[0])
    ).start()

    released, closed = reaper.close_jobs_of_ended_batch(engine, "batch-run-1", "the run died")
    assert released == 2 and [c.job_id for c in closed] == [clicks[0]]
    assert get_job(engine, clicks[0]).status == JobStatus.FAILED
    for job_id in clicks[1:]:
        job = get_job(engine, job_id)
        assert (job.status, job.run_id) == (JobStatus.PENDING, None), "back in the queue, untouched"
    with engine.begin() as conn:
        again = batch_queries.reserve(conn, "drive_import", "batch-run-2", 10)
    assert {j.id for j in again} == set(clicks[1:])


def test_a_standby_batch_run_is_kept_up_once_an_account_has_synced(
    instance: dg.DagsterInstance,
    db: DatabaseResource,
    engine: sa.Engine,
    auto: AutomationDefs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONOLYTH_SYNC_BATCH_STANDBY", "true")
    sensor = sensor_named(auto, "connector_sync_requests")
    account = connect_account(engine)
    assert not tick(sensor, instance, db).run_requests, "nothing synced yet: no standby"

    add_finished_job(engine, account, created_at=now())
    [standby] = tick(sensor, instance, db).run_requests
    assert (standby.job_name, standby.tags[TAG_BATCH]) == ("google_drive_batch_sync", "google_drive")
    create_run_for_test(
        instance, job_name=standby.job_name, status=dg.DagsterRunStatus.STARTED, tags=standby.tags
    )
    assert not tick(sensor, instance, db).run_requests, "one is alive: no second one"
    assert sync_now(engine, account) is not None
    assert not tick(sensor, instance, db).run_requests, "the live one takes the click itself"

    monkeypatch.setenv("MONOLYTH_SYNC_BATCH_STANDBY", "false")
    for run in instance.get_runs():
        instance.report_run_failed(run)
    [for_the_click] = tick(sensor, instance, db).run_requests
    assert for_the_click.job_name == "google_drive_batch_sync", "standby off: a batch for the pending row"
