"""How the pipeline runs itself: jobs, sensors and schedules over connector_accounts / connector_jobs.

One pathway for every run: whatever asks for a sync (the app's "Sync now", a newly connected
account, the schedule) inserts a ``pending`` connector_jobs row, and one sensor turns each pending
row into exactly one run of the account's partition (run key = job id, job id in the run tag
``monolyth/job_id``). The run claims that row and takes it to ``completed`` or ``failed``;
the run-status sensors and the reaper close the rows of runs that died where the asset could not.
See docs/sync-now.md (the contract with the app) and docs/operations.md (defaults, timings).

No `from __future__ import annotations`: Dagster reads the decorated functions' annotations at runtime.
"""

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from monolyth_pipelines import providers, settings
from monolyth_pipelines.defs import run_closing
from monolyth_pipelines.defs.batch_sync import batch_run_requests, build_batch_job
from monolyth_pipelines.defs.factory import build_asset
from monolyth_pipelines.defs.partitions import LIVE_RUN_STATUSES, TAG_JOB_ID, TAG_PROVIDER, partitions_for
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.defs.run_closing import close_after_run_ended, evaluate_reaper
from monolyth_pipelines.defs.run_queue import waiting_runs
from monolyth_pipelines.store import automation_queries as q
from monolyth_pipelines.store import batch_queries
from monolyth_pipelines.sync import probe, reaper

# Who asked for the run: "sync_now" (the app), "first_sync", "schedule". Read from the pending
# row's meta_json.requested_by, so the UI can filter runs by cause.
TAG_TRIGGER = "monolyth/trigger"
TRIGGER_SYNC_NOW = "sync_now"
TRIGGER_FIRST_SYNC = "first_sync"
TRIGGER_SCHEDULE = "schedule"
TRIGGER_BATCH = "batch"  # a batch run: its jobs' own triggers are on their rows

# What dg.define_asset_job returns (UnresolvedAssetJobDefinition, not exported by dagster).
AssetJob = Any


@dataclass(frozen=True)
class Cadence:
    cron: str
    interval: timedelta


# Oldest pending rows examined per tick (one query); the rest wait for a later tick.
MAX_REQUESTS_PER_TICK = 1000
# Runs go out as fast as the run queue starts them: a tick tops each provider's queue up to this
# many waiting runs and the QueuedRunCoordinator's limits (dagster.yaml) throttle; a deeper queue
# only costs the daemon storage work per run (bench/orchestration.py). MAX_RUNS_PER_TICK bounds a
# tick whatever the queue.
QUEUED_RUNS_PER_PROVIDER = 20
MAX_RUNS_PER_TICK = 100

# 5 s, the sensor daemon's own loop: a Sync now waits for a tick at most this long (one query
# when nothing is pending).
SYNC_REQUESTS_INTERVAL_SECONDS = 5
PARTITIONS_INTERVAL_SECONDS = 30
RUN_STATUS_INTERVAL_SECONDS = 15
REAPER_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class ProviderAutomation:
    provider: str
    kind: str
    asset: dg.AssetsDefinition
    partitions: dg.DynamicPartitionsDefinition
    cadence: Cadence

    @property
    def job_name(self) -> str:
        return f"{self.provider}_sync"

    @property
    def partitions_name(self) -> str:
        assert self.partitions.name is not None
        return self.partitions.name


def automation_for(spec: providers.ProviderSpec) -> ProviderAutomation:
    return ProviderAutomation(
        provider=spec.provider,
        kind=spec.kind,
        asset=build_asset(spec),
        partitions=partitions_for(spec),
        cadence=Cadence(spec.cron, spec.interval),
    )


def enabled_automations() -> list[ProviderAutomation]:
    """One entry per enabled provider of the registry (Gmail only behind its feature flag)."""
    return [automation_for(spec) for spec in providers.enabled_providers()]


def _missing_partitions(
    instance: dg.DagsterInstance, automation: ProviderAutomation, account_ids: Sequence[uuid.UUID]
) -> list[str]:
    if not account_ids:
        return []
    # One read of the key set per provider, never has_dynamic_partition per account.
    have = set(instance.get_dynamic_partitions(automation.partitions_name))
    return [key for key in dict.fromkeys(str(a) for a in account_ids) if key not in have]


# --- sensor bodies (plain functions, so tests and the bench call them with any automation list) --


def evaluate_account_partitions(
    context: dg.SensorEvaluationContext, db: DatabaseResource, automations: Sequence[ProviderAutomation]
) -> dg.SensorResult:
    """Partitions follow connected accounts; a connected account that never synced gets its first job."""
    by_provider = {a.provider: a for a in automations}
    with db.engine.begin() as conn:
        connected = q.connected_accounts(conn, {a.provider: a.kind for a in automations})
        first = [acct for acct in connected if not acct.has_job]
        requested: list[q.RequestedJob] = []
        for provider in sorted({acct.provider for acct in first}):
            requested += q.request_syncs(
                conn,
                provider=provider,
                kind=by_provider[provider].kind,
                requested_by=TRIGGER_FIRST_SYNC,
            )
    added = 0
    for automation in automations:
        ids = [acct.id for acct in connected if acct.provider == automation.provider]
        # Keys are only ever added: a disconnected account keeps its key (and its run history)
        # and simply stops being scheduled; re-adding a deleted key confuses Dagster's caches.
        missing = _missing_partitions(context.instance, automation, ids)
        if missing:
            # One bulk insert, this tick: as requests, the daemon checks each key with a query.
            context.instance.add_dynamic_partitions(automation.partitions_name, missing)
            added += len(missing)
    if requested:
        context.log.info(f"requested the first sync of {len(requested)} newly connected account(s)")
    if not added and not requested:
        return dg.SensorResult(skip_reason=f"{len(connected)} connected account(s), all with partitions")
    return dg.SensorResult(
        skip_reason=f"added {added} partition key(s); requested {len(requested)} first sync(s)"
    )


def _batch_settings(context: dg.SensorEvaluationContext) -> settings.BatchSettings:
    try:
        return settings.BatchSettings.from_env()
    except settings.ConfigError as exc:
        # One run per job still syncs everything; the batch settings' error stays visible.
        context.log.error(f"batch runs off: {exc}")
        return dataclasses.replace(settings.BatchSettings(), size=0)


def evaluate_sync_requests(
    context: dg.SensorEvaluationContext, db: DatabaseResource, automations: Sequence[ProviderAutomation]
) -> dg.SensorResult:
    """Each pending connector_jobs row becomes exactly one run of its account's partition."""
    by_kind = {a.kind: a for a in automations}
    batch = _batch_settings(context)
    batch_tags = {TAG_TRIGGER: TRIGGER_BATCH}
    with db.engine.connect() as conn:
        pending = q.pending_requests(conn, list(by_kind), limit=MAX_REQUESTS_PER_TICK)
        standby = (
            batch_queries.providers_synced_before(conn, {a.provider: a.kind for a in automations})
            if batch.enabled and batch.standby
            else set()
        )
    if not pending:
        requests = batch_run_requests(context.instance, db.engine, {}, batch, batch_tags, standby)
        if requests:
            return dg.SensorResult(run_requests=requests)
        return dg.SensorResult(skip_reason="no pending sync requests")

    refusals = []
    runnable: list[q.PendingRequest] = []
    batchable: dict[str, list[q.PendingRequest]] = defaultdict(list)
    provider_of_kind = {kind: a.provider for kind, a in by_kind.items()}
    for request in pending:
        refused = reaper.unsyncable_reason(request, provider_of_kind)
        if refused is not None:
            refusals.append((request.job, *refused))
        elif batch.enabled and request.batchable:
            batchable[provider_of_kind[request.job.kind]].append(request)
        else:
            runnable.append(request)

    # One run-storage query for all pending rows: which of them already have a run.
    runs_by_job: dict[str, list[dg.DagsterRun]] = defaultdict(list)
    if runnable:
        for run in context.instance.get_runs(
            dg.RunsFilter(tags={TAG_JOB_ID: [str(r.job.id) for r in runnable]})
        ):
            runs_by_job[run.tags[TAG_JOB_ID]].append(run)

    queue = context.instance
    room = {a.provider: QUEUED_RUNS_PER_PROVIDER - waiting_runs(queue, a.provider) for a in automations}
    run_requests = []
    ended: list[tuple[str, uuid.UUID, str]] = []
    to_launch: dict[str, list[uuid.UUID]] = defaultdict(list)
    deferred = 0
    for request in runnable:
        job = request.job
        automation = by_kind[job.kind]
        runs = runs_by_job.get(str(job.id), [])
        if not runs:
            if len(run_requests) >= MAX_RUNS_PER_TICK or room[automation.provider] <= 0:
                deferred += 1
                continue
            room[automation.provider] -= 1
            trigger = str((job.meta_json or {}).get("requested_by") or TRIGGER_SYNC_NOW)
            run_requests.append(
                dg.RunRequest(
                    run_key=str(job.id),
                    job_name=automation.job_name,
                    partition_key=str(job.account_id),
                    tags={TAG_JOB_ID: str(job.id), TAG_PROVIDER: automation.provider, TAG_TRIGGER: trigger},
                )
            )
            to_launch[automation.provider].append(job.account_id)
        elif all(run.status not in LIVE_RUN_STATUSES and not run_closing.will_retry(run) for run in runs):
            # Its run is over and never claimed the row (failed before the asset started, and the
            # failure sensor missed it, e.g. it was stopped): close it rather than leave it pending.
            last = runs[0]  # get_runs lists the newest first
            ended.append((last.run_id, job.id, f"run {last.run_id} ended {last.status.value}"))

    for job, code, reason in refusals:
        context.log.warning(f"refused job {job.id}: {code}: {reason}")
    reaper.refuse_requests(db.engine, refusals)
    for run_id, job_id, reason in ended:
        if reaper.close_job_of_ended_run(db.engine, run_id, job_id, reason):
            context.log.warning(f"closed job {job_id}: {reason}")

    if deferred:
        context.log.info(
            f"launching {len(run_requests)} runs; {deferred} pending job(s) wait for later ticks"
        )
    adds = []
    for automation in automations:
        # The partition sensor may not have ticked yet for an account the app just connected.
        missing = _missing_partitions(context.instance, automation, to_launch.get(automation.provider, []))
        if missing:
            adds.append(automation.partitions.build_add_request(missing))
    if batchable or standby:
        run_requests += batch_run_requests(context.instance, db.engine, batchable, batch, batch_tags, standby)
    if not run_requests:
        return dg.SensorResult(
            skip_reason=f"{len(pending)} pending: {len(refusals)} refused, {len(ended)} closed, "
            f"{len(pending) - len(refusals) - len(ended)} already have a run or a batch",
            dynamic_partitions_requests=adds,
        )
    return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=adds)


def evaluate_schedule(
    context: dg.ScheduleEvaluationContext, db: DatabaseResource, automation: ProviderAutomation
) -> dg.SkipReason:
    """Queue a pending job for every connected account that is due; the sync-requests sensor runs them."""
    now = context.scheduled_execution_time or datetime.now(UTC)
    interval = automation.cadence.interval
    # Slack so a job queued a little after the previous tick still counts as that tick's.
    grace = min(timedelta(minutes=5), interval / 10)
    # The change probe (sync/probe.py) leaves out accounts Google says are unchanged.
    requested, plan = probe.queue_due_syncs(
        db.engine,
        provider=automation.provider,
        kind=automation.kind,
        requested_by=TRIGGER_SCHEDULE,
        due_before=now - interval + grace,
        now=now,
    )
    return dg.SkipReason(
        f"queued {len(requested)} due {automation.provider} account(s) as pending jobs; "
        f"the connector_sync_requests sensor launches them; {plan.summary()}"
    )


# --- definitions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutomationDefs:
    automations: list[ProviderAutomation]
    jobs: list[AssetJob]
    batch_jobs: list[dg.JobDefinition]
    sensors: list[dg.SensorDefinition]
    schedules: list[dg.ScheduleDefinition]


def build_automation(automations: Sequence[ProviderAutomation]) -> AutomationDefs:
    automations = list(automations)
    jobs = [
        dg.define_asset_job(
            name=a.job_name,
            selection=[a.asset],
            tags={TAG_PROVIDER: a.provider},
            # One asset per run: a subprocess per step would only add start-up time.
            executor_def=dg.in_process_executor,
            description=f"Sync one {a.provider} account; connector_sync_requests launches it.",
        )
        for a in automations
    ]

    batch_jobs = [build_batch_job(providers.get(a.provider)) for a in automations]

    @dg.sensor(
        name="connector_account_partitions",
        minimum_interval_seconds=PARTITIONS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds a partition for every connected account and requests its first sync.",
    )
    def connector_account_partitions(context: dg.SensorEvaluationContext, db: DatabaseResource):
        return evaluate_account_partitions(context, db, automations)

    @dg.sensor(
        name="connector_sync_requests",
        jobs=[*jobs, *batch_jobs],
        minimum_interval_seconds=SYNC_REQUESTS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Turns each pending connector_jobs row into one run (Sync now, first syncs, schedules).",
    )
    def connector_sync_requests(context: dg.SensorEvaluationContext, db: DatabaseResource):
        return evaluate_sync_requests(context, db, automations)

    @dg.sensor(
        name="connector_stale_job_reaper",
        minimum_interval_seconds=REAPER_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Fails running jobs whose run is gone and whose heartbeat is older than "
        "MONOLYTH_STALE_JOB_SECONDS.",
    )
    def connector_stale_job_reaper(context: dg.SensorEvaluationContext, db: DatabaseResource):
        return evaluate_reaper(context, db, automations)

    @dg.run_failure_sensor(
        name="connector_run_failures",
        minimum_interval_seconds=RUN_STATUS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks the job of a run that failed outside the asset (killed, lost, failed to start).",
    )
    def connector_run_failures(context: dg.RunFailureSensorContext, db: DatabaseResource):
        message = context.failure_event.message or "the run failed"
        close_after_run_ended(db, context.dagster_run, f"Dagster run failed: {message}")

    @dg.run_status_sensor(
        name="connector_run_cancellations",
        run_status=dg.DagsterRunStatus.CANCELED,
        minimum_interval_seconds=RUN_STATUS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks the job of a canceled run failed.",
    )
    def connector_run_cancellations(context: dg.RunStatusSensorContext, db: DatabaseResource):
        close_after_run_ended(db, context.dagster_run, "the Dagster run was canceled before the sync ended")

    schedules = [_schedule_for(a, job) for a, job in zip(automations, jobs, strict=True)]
    return AutomationDefs(
        automations=automations,
        jobs=jobs,
        batch_jobs=batch_jobs,
        sensors=[
            connector_account_partitions,
            connector_sync_requests,
            connector_stale_job_reaper,
            connector_run_failures,
            connector_run_cancellations,
        ],
        schedules=schedules,
    )


def _schedule_for(automation: ProviderAutomation, job: AssetJob) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{automation.provider}_scheduled_sync",
        cron_schedule=automation.cadence.cron,
        job=job,
        execution_timezone="UTC",
        # Off until operations turn it on: connectors-v1.md has scheduled runs as "later".
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Queues a sync of every connected {automation.provider} account whose last job is "
        f"older than {automation.cadence.interval}.",
    )
    def scheduled_sync(context: dg.ScheduleEvaluationContext, db: DatabaseResource):
        return evaluate_schedule(context, db, automation)

    return scheduled_sync
