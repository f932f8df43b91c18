"""Partitions follow accounts; first syncs and scheduled syncs become pending jobs; only due accounts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.defs import automation
from monolyth_pipelines.defs.partitions import TAG_JOB_ID
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.store.schema import AccountStatus, JobStatus
from tests.orchestration.conftest import apply_partition_requests
from tests.orchestration.helpers import (
    add_finished_job,
    all_jobs,
    connect_account,
    now,
    sensor_named,
    set_account_status,
    sync_now,
    tick,
)

DRIVE_KEYS = "google_drive_accounts"


def run_schedule(
    auto: automation.AutomationDefs, instance: dg.DagsterInstance, db: DatabaseResource, at=None
) -> str:
    schedule = auto.schedules[0]
    with dg.build_schedule_context(
        instance=instance, resources={"db": db}, scheduled_execution_time=at or now()
    ) as context:
        result = schedule(context)
    assert isinstance(result, dg.SkipReason), "the schedule queues pending jobs, it never launches runs"
    return result.skip_message or ""


def test_connecting_an_account_creates_its_partition_and_requests_its_first_sync(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    partitions = sensor_named(auto, "connector_account_partitions")
    assert instance.get_dynamic_partitions(DRIVE_KEYS) == []

    account = connect_account(engine)
    tick(partitions, instance, db)
    assert instance.get_dynamic_partitions(DRIVE_KEYS) == [str(account)]

    [first] = all_jobs(engine, account)
    assert (first.status, first.kind) == (JobStatus.PENDING, "drive_import")
    assert first.meta_json == {"requested_by": automation.TRIGGER_FIRST_SYNC}

    # The first sync is an ordinary pending row: the Sync-now sensor launches it.
    requests = tick(sensor_named(auto, "connector_sync_requests"), instance, db)
    [run_request] = requests.run_requests
    assert run_request.partition_key == str(account)
    assert run_request.tags[TAG_JOB_ID] == str(first.id)
    assert run_request.tags[automation.TAG_TRIGGER] == automation.TRIGGER_FIRST_SYNC

    # Ticking again changes nothing: no second key, no second first-sync.
    again = tick(partitions, instance, db)
    assert again.skip_reason.skip_message == "1 connected account(s), all with partitions"
    assert instance.get_dynamic_partitions(DRIVE_KEYS) == [str(account)]
    assert len(all_jobs(engine, account)) == 1


def test_a_bulk_connect_adds_every_key_and_first_sync_in_one_tick(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    accounts = [str(connect_account(engine)) for _ in range(250)]
    partitions = sensor_named(auto, "connector_account_partitions")
    result = tick(partitions, instance, db)
    assert result.skip_reason.skip_message == "added 250 partition key(s); requested 250 first sync(s)"
    assert sorted(instance.get_dynamic_partitions(DRIVE_KEYS)) == sorted(accounts)
    assert sum(len(all_jobs(engine, uuid.UUID(a))) for a in accounts) == 250
    again = tick(partitions, instance, db)
    assert again.skip_reason.skip_message == "250 connected account(s), all with partitions"


def test_an_account_with_history_gets_no_first_sync_and_pending_accounts_none(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    synced = connect_account(engine)
    add_finished_job(engine, synced, created_at=now() - timedelta(days=3))
    oauth_in_progress = connect_account(engine, status=AccountStatus.PENDING)
    result = tick(sensor_named(auto, "connector_account_partitions"), instance, db)
    apply_partition_requests(instance, result)
    assert instance.get_dynamic_partitions(DRIVE_KEYS) == [str(synced)]
    assert len(all_jobs(engine, synced)) == 1
    assert all_jobs(engine, oauth_in_progress) == []


def test_disconnecting_stops_the_schedule_but_keeps_the_partition_key(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    keep, leave, broken = (connect_account(engine) for _ in range(3))
    for account in (keep, leave, broken):
        add_finished_job(engine, account, created_at=now() - timedelta(hours=2))
    apply_partition_requests(instance, tick(sensor_named(auto, "connector_account_partitions"), instance, db))
    set_account_status(engine, leave, AccountStatus.DISCONNECTED)
    set_account_status(engine, broken, AccountStatus.ERROR)

    message = run_schedule(auto, instance, db)
    assert message.startswith("queued 1 due google_drive account")
    assert [j.status for j in all_jobs(engine, keep)] == [JobStatus.COMPLETED, JobStatus.PENDING]
    assert [j.status for j in all_jobs(engine, leave)] == [JobStatus.COMPLETED]
    assert [j.status for j in all_jobs(engine, broken)] == [JobStatus.COMPLETED]

    # Keys are never deleted: Dagster keeps per-key history, and re-adding a key is messy.
    tick(sensor_named(auto, "connector_account_partitions"), instance, db)
    assert sorted(instance.get_dynamic_partitions(DRIVE_KEYS)) == sorted(map(str, (keep, leave, broken)))

    # Reconnecting needs no new key; the partition sensor leaves it alone.
    set_account_status(engine, leave, AccountStatus.CONNECTED)
    again = tick(sensor_named(auto, "connector_account_partitions"), instance, db)
    assert again.skip_reason.skip_message == "2 connected account(s), all with partitions"


def test_schedule_emits_only_due_accounts(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, auto: automation.AutomationDefs
) -> None:
    at = now()
    never = connect_account(engine)
    stale = connect_account(engine)
    add_finished_job(engine, stale, created_at=at - timedelta(hours=2))
    failed_long_ago = connect_account(engine)
    add_finished_job(engine, failed_long_ago, created_at=at - timedelta(hours=1), status=JobStatus.FAILED)
    recent = connect_account(engine)
    add_finished_job(engine, recent, created_at=at - timedelta(minutes=30))
    # Queued a minute after the previous tick: still that tick's job, so due again now (grace).
    just_after_last_tick = connect_account(engine)
    add_finished_job(engine, just_after_last_tick, created_at=at - timedelta(minutes=59))
    busy = connect_account(engine)
    sync_now(engine, busy)

    assert run_schedule(auto, instance, db, at=at).startswith("queued 4 due")
    accounts = (never, stale, failed_long_ago, recent, just_after_last_tick, busy)
    due = {a for a in accounts if _pending(engine, a)}
    assert due == {never, stale, failed_long_ago, just_after_last_tick, busy}
    assert len(all_jobs(engine, busy)) == 1, "an open job is never doubled"
    assert len(all_jobs(engine, recent)) == 1

    # A second evaluation of the same tick (the daemon may retry it) queues nothing more.
    assert run_schedule(auto, instance, db, at=at).startswith("queued 0 due")


def _pending(engine: sa.Engine, account) -> bool:
    return any(j.status == JobStatus.PENDING for j in all_jobs(engine, account))


def test_defaults_sensors_running_schedules_stopped(auto: automation.AutomationDefs) -> None:
    assert {s.name: s.default_status for s in auto.sensors} == {
        "connector_account_partitions": dg.DefaultSensorStatus.RUNNING,
        "connector_sync_requests": dg.DefaultSensorStatus.RUNNING,
        "connector_stale_job_reaper": dg.DefaultSensorStatus.RUNNING,
        "connector_run_failures": dg.DefaultSensorStatus.RUNNING,
        "connector_run_cancellations": dg.DefaultSensorStatus.RUNNING,
    }
    [schedule] = auto.schedules
    assert schedule.name == "google_drive_scheduled_sync"
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_gmail_behind_its_flag_gets_the_same_automation(
    instance: dg.DagsterInstance, db: DatabaseResource, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With int_gmail on, the real Gmail asset gets its job, schedule, partitions and first syncs."""
    from monolyth_pipelines.definitions import build_definitions

    assert [a.provider for a in automation.enabled_automations()] == ["google_drive"]
    monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "int_gmail")
    auto = automation.build_automation(automation.enabled_automations())
    assert [a.provider for a in auto.automations] == ["google_drive", "gmail"]
    assert [j.name for j in auto.jobs] == ["google_drive_sync", "gmail_sync"]
    assert [s.name for s in auto.schedules] == ["google_drive_scheduled_sync", "gmail_scheduled_sync"]
    assert auto.schedules[1].cron_schedule == "30 */6 * * *"
    assert auto.schedules[1].default_status == dg.DefaultScheduleStatus.STOPPED
    dg.Definitions.validate_loadable(build_definitions())

    drive_account = connect_account(engine)
    gmail_account = connect_account(engine, provider="gmail")
    apply_partition_requests(instance, tick(sensor_named(auto, "connector_account_partitions"), instance, db))
    assert instance.get_dynamic_partitions(DRIVE_KEYS) == [str(drive_account)]
    assert instance.get_dynamic_partitions("gmail_accounts") == [str(gmail_account)]
    [gmail_job] = all_jobs(engine, gmail_account)
    assert gmail_job.kind == "gmail_import"
    run_requests = tick(sensor_named(auto, "connector_sync_requests"), instance, db).run_requests
    assert {(r.job_name, r.partition_key) for r in run_requests} == {
        ("google_drive_sync", str(drive_account)),
        ("gmail_sync", str(gmail_account)),
    }
