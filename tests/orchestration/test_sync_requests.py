"""Sync now: each pending connector_jobs row becomes exactly one run, or is closed with a reason."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from dagster._core.test_utils import create_run_for_test

from monolyth_pipelines.definitions import defs as project_defs
from monolyth_pipelines.defs import automation
from monolyth_pipelines.defs.partitions import TAG_JOB_ID, TAG_PROVIDER
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.store.schema import AccountStatus, JobStatus
from tests.orchestration.helpers import (
    all_jobs,
    connect_account,
    events_of,
    get_job,
    sensor_named,
    set_account_status,
    sync_now,
    tick,
)

DRIVE_KEYS = "google_drive_accounts"


def test_a_pending_row_becomes_one_run_request_for_its_partition(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    account = connect_account(engine)
    job_id = sync_now(engine, account)
    assert job_id is not None

    # Evaluated through Dagster's own resolution (as the daemon does), which rejects a partition
    # key that neither exists nor is added in the same result.
    sensor = sensor_named(auto, "connector_sync_requests")
    with dg.SensorEvaluationContext(
        instance_ref=instance.get_ref(),
        instance=instance,
        resources={"db": db},
        definitions=project_defs,
        sensor_name=sensor.name,
    ) as context:
        data = sensor.evaluate_tick(context)
    [request] = data.run_requests
    assert request.run_key == str(job_id)
    assert request.job_name == "google_drive_sync"
    assert request.partition_key == str(account)
    assert request.tags[TAG_JOB_ID] == str(job_id)
    assert request.tags[TAG_PROVIDER] == "google_drive"
    assert request.tags[automation.TAG_TRIGGER] == automation.TRIGGER_SYNC_NOW
    assert request.tags["dagster/partition"] == str(account)
    # The partition sensor has not ticked yet: this sensor adds the key itself.
    [add] = data.dynamic_partitions_requests
    assert (add.partitions_def_name, list(add.partition_keys)) == (DRIVE_KEYS, [str(account)])

    # Once a run carries the job id, later ticks ask for nothing (whatever the run key dedupe does).
    create_run_for_test(
        instance, job_name="google_drive_sync", status=dg.DagsterRunStatus.NOT_STARTED, tags=request.tags
    )
    again = tick(sensor, instance, db)
    assert not again.run_requests
    assert "1 already have a run" in again.skip_reason.skip_message
    assert get_job(engine, job_id).status == JobStatus.PENDING, "the run, not the sensor, claims the row"


def test_two_sync_now_clicks_give_one_job_and_one_run_request(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    account = connect_account(engine)
    first = sync_now(engine, account)
    second = sync_now(engine, account)
    assert first is not None and second is None, "ON CONFLICT DO NOTHING: the second click joins the first"
    result = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert [r.run_key for r in result.run_requests] == [str(first)]
    assert len(all_jobs(engine, account)) == 1


def test_the_documented_insert_with_the_index_predicate_also_coalesces(engine: sa.Engine) -> None:
    """docs/sync-now.md's second form: ON CONFLICT on the partial index's columns and predicate."""
    account = connect_account(engine)
    sql = sa.text(
        "INSERT INTO connector_jobs (account_id, kind, status) VALUES (:a, 'drive_import', 'pending') "
        "ON CONFLICT (account_id, kind) WHERE status IN ('pending', 'running') DO NOTHING RETURNING id"
    )
    with engine.begin() as conn:
        bound = account if conn.dialect.name == "postgresql" else account.hex
        first = conn.execute(sql, {"a": bound}).all()
        second = conn.execute(sql, {"a": bound}).all()
    assert (len(first), len(second)) == (1, 0)
    assert len(all_jobs(engine, account)) == 1


def test_many_accounts_one_run_request_each(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    accounts = [connect_account(engine) for _ in range(5)]
    job_ids = [sync_now(engine, a) for a in accounts]
    result = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert sorted(r.run_key for r in result.run_requests) == sorted(str(j) for j in job_ids)
    assert sorted(r.partition_key for r in result.run_requests) == sorted(str(a) for a in accounts)


def test_a_backlog_is_launched_as_fast_as_the_run_queue_starts_runs(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    """A burst (1,000 first syncs, an hourly schedule) keeps the run queue topped up, no deeper: the
    rest waits as pending rows, and each tick launches as many runs as the queue has started."""
    sensor = sensor_named(auto, "connector_sync_requests")
    depth = automation.QUEUED_RUNS_PER_PROVIDER
    accounts = [connect_account(engine) for _ in range(2 * depth + 5)]
    job_ids = [str(sync_now(engine, a)) for a in accounts]
    first = tick(sensor, instance, db)
    assert len(first.run_requests) == depth
    for request in first.run_requests:  # what the daemon does with them: runs waiting to start
        create_run_for_test(
            instance, job_name="google_drive_sync", status=dg.DagsterRunStatus.NOT_STARTED, tags=request.tags
        )
    # Nothing started yet: the queue is full, nothing more is launched.
    assert tick(sensor, instance, db).run_requests == []
    # The run queue starts them (the per-provider cap decides how many at once); the next tick
    # refills the queue with the next oldest jobs.
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.NOT_STARTED])):
        instance.report_run_canceled(run)  # any status that is no longer waiting
    second = tick(sensor, instance, db)
    assert len(second.run_requests) == depth
    for request in second.run_requests:
        create_run_for_test(
            instance, job_name="google_drive_sync", status=dg.DagsterRunStatus.STARTED, tags=request.tags
        )
    third = tick(sensor, instance, db)
    assert len(third.run_requests) == 5
    launched = [r.run_key for r in (*first.run_requests, *second.run_requests, *third.run_requests)]
    assert sorted(launched) == sorted(job_ids)


def test_a_request_for_an_account_that_is_not_connected_is_closed_failed(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    gone = connect_account(engine)
    broken = connect_account(engine)
    gone_job, broken_job = sync_now(engine, gone), sync_now(engine, broken)
    set_account_status(engine, gone, AccountStatus.DISCONNECTED)
    set_account_status(engine, broken, AccountStatus.ERROR)

    result = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert not result.run_requests
    assert "2 refused" in result.skip_reason.skip_message

    for account, job_id, code in ((gone, gone_job, "bad_request"), (broken, broken_job, "auth_revoked")):
        job = get_job(engine, job_id)
        assert job.status == JobStatus.FAILED
        assert job.finished_at is not None
        assert job.last_error.startswith(f"{code}: account {account} is ")
        assert "not connected" in job.last_error
        # No run was ever started for it: no failed sync to report, the row says why.
        assert events_of(engine, account, "connector_sync_failed") == []
        assert job.run_id is None and job.started_at is None

    # Closed means closed: the next tick neither runs nor re-reports them.
    tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert get_job(engine, gone_job).status == JobStatus.FAILED
    assert events_of(engine, gone, "connector_sync_failed") == []


def test_a_request_of_the_wrong_kind_for_its_account_is_refused(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    gmail_account = connect_account(engine, provider="gmail")
    job_id = sync_now(engine, gmail_account, kind="drive_import")
    result = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert not result.run_requests
    job = get_job(engine, job_id)
    assert job.status == JobStatus.FAILED
    assert job.last_error.startswith("bad_request: a drive_import job was requested for account")


def test_a_pending_row_whose_run_ended_without_claiming_it_is_closed(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    """Safety net for a run that failed before the asset started while the failure sensor was off."""
    account = connect_account(engine)
    job_id = sync_now(engine, account)
    tags = {TAG_JOB_ID: str(job_id), TAG_PROVIDER: "google_drive", "dagster/partition": str(account)}
    run = create_run_for_test(
        instance, job_name="google_drive_sync", status=dg.DagsterRunStatus.FAILURE, tags=tags
    )
    result = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert not result.run_requests
    job = get_job(engine, job_id)
    assert job.status == JobStatus.FAILED
    assert job.run_id == run.run_id
    assert job.last_error.startswith("run_died: the run ended before the sync started")
    [failed] = events_of(engine, account, "connector_sync_failed")
    assert failed["run_id"] == run.run_id


def test_a_pending_row_whose_run_will_be_retried_is_left_alone(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    account = connect_account(engine)
    job_id = sync_now(engine, account)
    tags = {TAG_JOB_ID: str(job_id), "dagster/partition": str(account), "dagster/will_retry": "true"}
    create_run_for_test(instance, job_name="google_drive_sync", status=dg.DagsterRunStatus.FAILURE, tags=tags)
    result = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert not result.run_requests
    assert get_job(engine, job_id).status == JobStatus.PENDING
    assert events_of(engine, account, "connector_sync_failed") == []


def test_pending_gmail_rows_wait_while_gmail_is_off(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    """The flag may be turned on later; the sensor neither runs nor fails what it does not serve."""
    account = connect_account(engine, provider="gmail")
    job_id = sync_now(engine, account, kind="gmail_import")
    result = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    assert result.skip_reason.skip_message == "no pending sync requests"
    assert get_job(engine, job_id).status == JobStatus.PENDING
