"""Truth after failures the asset cannot see: run-failure / run-canceled sensors and the reaper."""

from __future__ import annotations

import uuid
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import create_run_for_test

from monolyth_pipelines.defs import automation
from monolyth_pipelines.defs.drive import google_drive_files
from monolyth_pipelines.defs.partitions import TAG_JOB_ID, TAG_PROVIDER
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.store.jobs import start_job
from monolyth_pipelines.store.schema import JobStatus
from tests.orchestration.helpers import (
    connect_account,
    events_of,
    get_job,
    now,
    sensor_named,
    set_job,
    sync_now,
    tick,
)


class LostSecretsGoogle(GoogleApiResource):
    """A resource that fails to initialise: the run fails before the asset body runs at all."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        raise RuntimeError("the code location could not load its Google client settings")


def run_failing_before_the_asset(
    instance: dg.DagsterInstance, db_url: str, account: uuid.UUID, job_id: uuid.UUID
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("google_drive_accounts", [str(account)])
    return dg.materialize(
        [google_drive_files],
        partition_key=str(account),
        instance=instance,
        resources={"db": DatabaseResource(url=db_url), "google": LostSecretsGoogle()},
        tags={TAG_JOB_ID: str(job_id), TAG_PROVIDER: "google_drive"},
        raise_on_error=False,
    )


def evaluate_status_sensor(
    sensor: dg.RunStatusSensorDefinition,
    instance: dg.DagsterInstance,
    db: DatabaseResource,
    run: dg.DagsterRun,
    event: dg.DagsterEvent,
) -> None:
    """One evaluation of a run-status sensor for one run, as the daemon would make it."""
    with dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=event,
        resources={"db": db},
        partition_key=run.tags.get("dagster/partition"),
    ) as context:
        context.resources  # opened inside the scope, so the failure view below shares them  # noqa: B018
        sensor(context.for_run_failure() if event.event_type_value == "PIPELINE_FAILURE" else context)


def pipeline_event(instance: dg.DagsterInstance, run_id: str, event_type: str) -> dg.DagsterEvent:
    [entry] = [
        e
        for e in instance.all_logs(run_id)
        if e.dagster_event and e.dagster_event.event_type_value == event_type
    ]
    assert entry.dagster_event is not None
    return entry.dagster_event


def test_a_run_that_failed_before_the_asset_started_closes_its_job(
    instance: dg.DagsterInstance,
    db: DatabaseResource,
    fresh_db_url: str,
    engine: sa.Engine,
    auto: automation.AutomationDefs,
) -> None:
    account = connect_account(engine)
    job_id = sync_now(engine, account)
    assert job_id is not None
    result = run_failing_before_the_asset(instance, fresh_db_url, account, job_id)
    assert not result.success
    assert get_job(engine, job_id).status == JobStatus.PENDING, "the asset never ran"

    sensor = sensor_named(auto, "connector_run_failures")
    event = pipeline_event(instance, result.run_id, "PIPELINE_FAILURE")
    evaluate_status_sensor(sensor, instance, db, result.dagster_run, event)

    job = get_job(engine, job_id)
    assert job.status == JobStatus.FAILED
    assert job.run_id == result.run_id
    assert job.last_error.startswith("run_died: the run ended before the sync started: Dagster run failed")
    [failed] = events_of(engine, account, "connector_sync_failed")
    assert failed["run_id"] == result.run_id
    assert failed["payload"]["error_code"] == "run_died"
    assert failed["payload"]["run_id"] == result.run_id

    # The daemon may show the sensor the same failure again: nothing is written twice.
    evaluate_status_sensor(sensor, instance, db, result.dagster_run, event)
    assert len(events_of(engine, account, "connector_sync_failed")) == 1


def test_a_run_that_will_be_retried_is_not_marked_failed(
    instance: dg.DagsterInstance,
    db: DatabaseResource,
    fresh_db_url: str,
    engine: sa.Engine,
    auto: automation.AutomationDefs,
) -> None:
    account = connect_account(engine)
    job_id = sync_now(engine, account)
    assert job_id is not None
    result = run_failing_before_the_asset(instance, fresh_db_url, account, job_id)
    # What the run-retry machinery sets on a failed run it is about to retry.
    instance.add_run_tags(result.run_id, {"dagster/will_retry": "true"})
    run = instance.get_run_by_id(result.run_id)
    assert run is not None

    sensor = sensor_named(auto, "connector_run_failures")
    evaluate_status_sensor(
        sensor, instance, db, run, pipeline_event(instance, run.run_id, "PIPELINE_FAILURE")
    )
    assert get_job(engine, job_id).status == JobStatus.PENDING
    assert events_of(engine, account, "connector_sync_failed") == []


def _job_held_by_a_started_run(
    instance: dg.DagsterInstance, engine: sa.Engine
) -> tuple[uuid.UUID, uuid.UUID, dg.DagsterRun]:
    """A "Sync now" job that a started run has claimed, as the asset leaves it mid-sync."""
    account = connect_account(engine)
    job_id = sync_now(engine, account)
    assert job_id is not None
    tags = {TAG_JOB_ID: str(job_id), "dagster/partition": str(account)}
    run = create_run_for_test(
        instance, job_name="google_drive_sync", status=dg.DagsterRunStatus.STARTED, tags=tags
    )
    with engine.begin() as conn:
        start_job(conn, account_id=account, kind="drive_import", run_id=run.run_id, attempt=1, job_id=job_id)
    return account, job_id, run


def test_a_killed_run_holding_its_job_gets_it_failed(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    """The row is running under the dead run; run monitoring reports the run failed; the sensor closes it."""
    account, job_id, run = _job_held_by_a_started_run(instance, engine)
    instance.report_run_failed(run, "Run worker process exited unexpectedly (killed)")

    sensor = sensor_named(auto, "connector_run_failures")
    evaluate_status_sensor(
        sensor, instance, db, run, pipeline_event(instance, run.run_id, "PIPELINE_FAILURE")
    )
    job = get_job(engine, job_id)
    assert job.status == JobStatus.FAILED
    assert job.last_error.startswith("run_died: Dagster run failed: Run worker process exited unexpectedly")
    assert [e["payload"]["error_code"] for e in events_of(engine, account, "connector_sync_failed")] == [
        "run_died"
    ]


def test_a_canceled_run_gets_its_job_failed(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    _account, job_id, run = _job_held_by_a_started_run(instance, engine)
    instance.report_run_canceled(run)

    sensor = sensor_named(auto, "connector_run_cancellations")
    canceled = instance.get_run_by_id(run.run_id)
    assert canceled is not None
    evaluate_status_sensor(
        sensor, instance, db, canceled, pipeline_event(instance, run.run_id, "PIPELINE_CANCELED")
    )
    job = get_job(engine, job_id)
    assert job.status == JobStatus.FAILED
    assert "canceled" in job.last_error


def test_a_failed_run_does_not_touch_a_job_another_run_holds(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    """A run from the UI claimed the row first; the sensor's own run then failed with a conflict."""
    account = connect_account(engine)
    job_id = sync_now(engine, account)
    assert job_id is not None
    holder = create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED)
    with engine.begin() as conn:
        start_job(conn, account_id=account, kind="drive_import", run_id=holder.run_id, attempt=1)
    loser = create_run_for_test(
        instance,
        job_name="google_drive_sync",
        status=dg.DagsterRunStatus.STARTED,
        tags={TAG_JOB_ID: str(job_id), "dagster/partition": str(account)},
    )
    instance.report_run_failed(loser, "JobConflictError: job is already running")
    sensor = sensor_named(auto, "connector_run_failures")
    evaluate_status_sensor(
        sensor, instance, db, loser, pipeline_event(instance, loser.run_id, "PIPELINE_FAILURE")
    )
    job = get_job(engine, job_id)
    assert (job.status, job.run_id) == (JobStatus.RUNNING, holder.run_id)
    assert events_of(engine, account, "connector_sync_failed") == []


def test_a_run_that_is_not_a_connector_sync_is_ignored(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine
) -> None:
    run = create_run_for_test(instance, job_name="something_else", status=dg.DagsterRunStatus.STARTED)
    assert automation.close_after_run_ended(db, run, "boom") is None


# --- the reaper ---------------------------------------------------------------------------------


@pytest.fixture
def stale_seconds(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("MONOLYTH_STALE_JOB_SECONDS", "600")
    return 600


def _running_job(
    engine: sa.Engine, instance: dg.DagsterInstance, status: dg.DagsterRunStatus | None, quiet_for: timedelta
) -> tuple[uuid.UUID, uuid.UUID, str]:
    account = connect_account(engine)
    run_id = (
        create_run_for_test(instance, job_name="google_drive_sync", status=status).run_id
        if status is not None
        else str(uuid.uuid4())  # a run this instance never heard of
    )
    with engine.begin() as conn:
        job = start_job(conn, account_id=account, kind="drive_import", run_id=run_id, attempt=1)
    set_job(engine, job.id, updated_at=now() - quiet_for)
    return account, job.id, run_id


def test_reaper_fails_only_silent_jobs_whose_run_is_gone(
    instance: dg.DagsterInstance,
    db: DatabaseResource,
    engine: sa.Engine,
    auto: automation.AutomationDefs,
    stale_seconds: int,
) -> None:
    quiet = timedelta(seconds=stale_seconds + 60)
    _, dead, _ = _running_job(engine, instance, dg.DagsterRunStatus.FAILURE, quiet)
    _, unknown, _ = _running_job(engine, instance, None, quiet)
    _, slow_but_alive, _ = _running_job(engine, instance, dg.DagsterRunStatus.STARTED, quiet)
    _, recent, _ = _running_job(engine, instance, dg.DagsterRunStatus.FAILURE, timedelta(seconds=30))

    reaper = sensor_named(auto, "connector_stale_job_reaper")
    result = tick(reaper, instance, db)
    assert result.skip_message == "3 stale running job(s), 2 reaped"
    assert get_job(engine, dead).status == JobStatus.FAILED
    assert get_job(engine, unknown).status == JobStatus.FAILED
    assert get_job(engine, slow_but_alive).status == JobStatus.RUNNING
    assert get_job(engine, recent).status == JobStatus.RUNNING
    assert get_job(engine, dead).last_error.startswith("run_died: no heartbeat for over 600 s")
    assert "unknown to Dagster" in get_job(engine, unknown).last_error

    # Idempotent: a second tick writes nothing new.
    tick(reaper, instance, db)
    assert get_job(engine, slow_but_alive).status == JobStatus.RUNNING


def test_reaper_and_failure_sensor_never_both_report(
    instance: dg.DagsterInstance,
    db: DatabaseResource,
    engine: sa.Engine,
    auto: automation.AutomationDefs,
    stale_seconds: int,
) -> None:
    account, job_id, run_id = _running_job(
        engine, instance, dg.DagsterRunStatus.STARTED, timedelta(seconds=stale_seconds + 1)
    )
    run = instance.get_run_by_id(run_id)
    assert run is not None
    instance.report_run_failed(run, "killed")
    sensor = sensor_named(auto, "connector_run_failures")
    evaluate_status_sensor(sensor, instance, db, run, pipeline_event(instance, run_id, "PIPELINE_FAILURE"))
    tick(sensor_named(auto, "connector_stale_job_reaper"), instance, db)
    assert get_job(engine, job_id).status == JobStatus.FAILED
    assert len(events_of(engine, account, "connector_sync_failed")) == 1


def test_reaper_timing_follows_the_setting(
    instance: dg.DagsterInstance,
    db: DatabaseResource,
    engine: sa.Engine,
    auto: automation.AutomationDefs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, job_id, _ = _running_job(engine, instance, dg.DagsterRunStatus.FAILURE, timedelta(seconds=120))
    monkeypatch.setenv("MONOLYTH_STALE_JOB_SECONDS", "300")
    tick(sensor_named(auto, "connector_stale_job_reaper"), instance, db)
    assert get_job(engine, job_id).status == JobStatus.RUNNING
    monkeypatch.setenv("MONOLYTH_STALE_JOB_SECONDS", "60")
    tick(sensor_named(auto, "connector_stale_job_reaper"), instance, db)
    assert get_job(engine, job_id).status == JobStatus.FAILED
