"""Batch runs: one Dagster run syncs many accounts' incremental jobs, one after the other.

A run costs seconds of machine time before it syncs anything (a process, the definitions import,
Dagster's run start-up and event writes), while an incremental sync of an account is a tenth of a
second (docs/architecture.md has the measurements). So pending jobs of accounts synced before go
to a batch run per provider, which reserves a few at a time (store/batch_queries.py), claims and
syncs each exactly as the per-account asset does (sync/one_account.py), reports each success as a
materialisation of that account's partition, and keeps pulling until the queue has been empty for
``MONOLYTH_SYNC_BATCH_LINGER_SECONDS``. First syncs, UI materialisations and backfills stay
per-account runs of the asset.

Each account keeps its own job row, events, page fence and claim: a failure fails only that
account's job, and a transient one is retried inside the batch after the same exponential,
jittered wait a step retry would use.

No `from __future__ import annotations`: Dagster reads the op's annotations at runtime.
"""

import heapq
import math
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from monolyth_pipelines import providers, settings
from monolyth_pipelines.defs.connector_asset import (
    ASSET_RETRY_POLICY,
    account_syncer,
    materialization_of,
    step_retry_wait,
)
from monolyth_pipelines.defs.partitions import LIVE_RUN_STATUSES, TAG_PROVIDER
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.store import batch_queries
from monolyth_pipelines.store.automation_queries import PendingRequest
from monolyth_pipelines.store.jobs import Job
from monolyth_pipelines.sync.one_account import AccountOutcome, AccountSyncer
from monolyth_pipelines.sync.run import DEFAULT_STALE_AFTER, RunIdentity

# Tag of every batch run (value: the provider): the sensor counts live batches by it, and the
# run-status sensors hand a dead batch's reservations back to the queue.
TAG_BATCH = "monolyth/batch"
POLL_SECONDS = 0.5


def batch_job_name(provider: str) -> str:
    return f"{provider}_batch_sync"


@dataclass(order=True)
class _Retry:
    due: float
    attempt: int
    job: Job = field(compare=False)


@dataclass
class BatchProgress:
    completed: int = 0
    failed: int = 0
    busy: int = 0
    retried: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "failed": self.failed,
            "busy": self.busy,
            "retried": self.retried,
            "failures_by_code": dg.MetadataValue.json(self.error_codes),
        }


class BatchLoop:
    """The pull loop of one batch run, written as a generator of Dagster events."""

    def __init__(
        self,
        context: dg.OpExecutionContext,
        spec: providers.ProviderSpec,
        db: DatabaseResource,
        syncer: AccountSyncer,
        batch: settings.BatchSettings,
        config_error: settings.ConfigError | None = None,
    ) -> None:
        self.context, self.spec, self.db, self.syncer, self.batch = context, spec, db, syncer, batch
        # The run's settings did not validate: every job it takes fails as bad_config, on record.
        self.config_error = config_error
        self.run_id = context.run.run_id
        self.retries: list[_Retry] = []
        self.reserved: list[Job] = []
        self.progress = BatchProgress()

    def events(self) -> Iterator[Any]:
        started = time.monotonic()
        idle_since: float | None = None
        try:
            while True:
                now = time.monotonic()
                if self.retries and self.retries[0].due <= now:
                    retry = heapq.heappop(self.retries)
                    yield from self._sync(retry.job, retry.attempt)
                    continue
                if not self.reserved and now - started < self.batch.max_seconds:
                    with self.db.engine.begin() as conn:
                        self.reserved = batch_queries.reserve(
                            conn, self.spec.kind, self.run_id, self.batch.size
                        )
                if self.reserved:
                    idle_since = None
                    yield from self._sync(self.reserved.pop(0), 1)
                    continue
                if self.retries:
                    time.sleep(min(POLL_SECONDS, max(0.0, self.retries[0].due - now)))
                    continue
                idle_since = idle_since if idle_since is not None else now
                if now - started >= self.batch.max_seconds or now - idle_since >= self.batch.idle_seconds:
                    return
                time.sleep(POLL_SECONDS)
        finally:
            # Stopped early (terminated, an error in this loop): rows reserved but not started go
            # back to the queue for the next batch; the job being synced is the run-status
            # sensors' to close.
            if self.reserved:
                with self.db.engine.begin() as conn:
                    batch_queries.release(conn, [self.run_id], [job.id for job in self.reserved])

    def _sync(self, job: Job, attempt: int) -> Iterator[Any]:
        identity = RunIdentity(
            account_id=job.account_id,
            provider=self.spec.provider,
            kind=self.spec.kind,
            run_id=self.run_id,
            attempt=attempt,
            job_id=job.id,
        )
        try:
            limits, config_error = self.spec.limits.from_env(), self.config_error
        except settings.ConfigError as exc:
            limits, config_error = self.spec.limits(), self.config_error or exc
        may_retry = attempt <= ASSET_RETRY_POLICY.max_retries
        outcome = self.syncer.sync(identity, limits, may_retry=may_retry, config_error=config_error)
        yield from self._report(job, attempt, outcome)

    def _report(self, job: Job, attempt: int, outcome: AccountOutcome) -> Iterator[Any]:
        log, p = self.context.log, self.progress
        account = str(job.account_id)
        if outcome.busy is not None:
            p.busy += 1
            log.info(f"account {account}: {outcome.busy.message}")
            return
        if outcome.error is not None:
            error = outcome.error
            if outcome.will_retry:
                wait = step_retry_wait(attempt, settings.RetrySettings.from_env())
                heapq.heappush(self.retries, _Retry(time.monotonic() + wait, attempt + 1, job))
                p.retried += 1
                log.warning(f"account {account}: {error.code}: {error.message} (retry in {wait:.1f} s)")
                return
            p.failed += 1
            p.error_codes[str(error.code)] = p.error_codes.get(str(error.code), 0) + 1
            log.error(f"account {account}: job {outcome.job_id} failed: {error.code}: {error.message}")
            return
        assert outcome.meta is not None
        p.completed += 1
        for warning in outcome.meta["counters"]["warnings"]:
            log.warning(f"account {account}: {warning}")
        metadata, completeness = materialization_of(
            self.db.engine, job.account_id, outcome.meta, outcome.run, log.warning
        )
        yield dg.AssetMaterialization(
            asset_key=self.spec.asset_name,
            partition=account,
            metadata={**metadata, "batch_run_id": self.run_id},
        )
        yield dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(self.spec.asset_name),
            check_name=completeness.check_name or "",
            passed=completeness.passed,
            severity=completeness.severity,
            description=completeness.description,
            metadata=completeness.metadata,
        )


def build_batch_job(spec: providers.ProviderSpec) -> dg.JobDefinition:
    @dg.op(
        name=f"{spec.provider}_sync_batch",
        pool=spec.pool_name,
        description=f"Syncs pending incremental {spec.provider} jobs, one account after another.",
    )
    def sync_batch(context: dg.OpExecutionContext, db: DatabaseResource, google: GoogleApiResource):
        stale_after, config_error = DEFAULT_STALE_AFTER, None
        try:
            settings.check_run_settings()
            stale_after = timedelta(seconds=settings.stale_job_seconds())
            batch = settings.BatchSettings.from_env()
        except settings.ConfigError as exc:
            batch, config_error = settings.BatchSettings(), exc
        syncer = account_syncer(context.instance, spec, db, google, stale_after, context.log.debug)
        loop = BatchLoop(context, spec, db, syncer, batch, config_error)
        yield from loop.events()
        context.log.info(f"batch done: {loop.progress.completed} completed, {loop.progress.failed} failed")
        yield dg.Output(None, metadata=loop.progress.as_metadata())

    @dg.job(
        name=batch_job_name(spec.provider),
        tags={TAG_PROVIDER: spec.provider, TAG_BATCH: spec.provider},
        executor_def=dg.in_process_executor,
        # Bound here, not only by the Definitions: Dagster rebinds an op job whose resources it must
        # supply, and that copy of its sensor trips a BetaWarning (``owners``) inside Dagster.
        resource_defs={"db": DatabaseResource(), "google": GoogleApiResource()},
        description=f"Incremental syncs of many {spec.provider} accounts in one run; "
        "connector_sync_requests launches it.",
    )
    def batch_job() -> None:
        sync_batch()

    return batch_job


def is_batch_run(run: dg.DagsterRun) -> bool:
    return TAG_BATCH in run.tags


def batch_run_requests(
    instance: dg.DagsterInstance,
    engine: sa.Engine,
    waiting: Mapping[str, Sequence[PendingRequest]],
    batch: settings.BatchSettings,
    tags: Mapping[str, str],
    standby: Collection[str] = (),
) -> list[dg.RunRequest]:
    """The batch runs to launch for these batchable pending rows, per provider: enough to take
    the unreserved ones, never more than ``runs_per_provider`` live at once (a live batch keeps
    pulling new rows by itself); for each provider in ``standby``, one even with nothing pending.
    Reservations of batch runs that ended or that Dagster does not know are handed back first."""
    reserving = sorted({r.job.run_id for rows in waiting.values() for r in rows if r.job.run_id})
    gone: set[str] = set()
    if reserving:
        runs = {run.run_id: run for run in instance.get_runs(dg.RunsFilter(run_ids=reserving))}
        gone = {
            run_id
            for run_id in reserving
            if run_id not in runs
            or (is_batch_run(runs[run_id]) and runs[run_id].status not in LIVE_RUN_STATUSES)
        }
        if gone:
            with engine.begin() as conn:
                batch_queries.release(conn, gone)
    requests = []
    for provider in sorted({*waiting, *standby}):
        rows = waiting.get(provider, ())
        unreserved = sum(1 for r in rows if r.job.run_id is None or r.job.run_id in gone)
        if not unreserved and provider not in standby:
            continue
        live = instance.get_runs_count(
            dg.RunsFilter(tags={TAG_BATCH: provider}, statuses=list(LIVE_RUN_STATUSES))
        )
        wanted = max(math.ceil(unreserved / batch.size), 1 if provider in standby else 0)
        for _ in range(min(batch.runs_per_provider - live, wanted)):
            requests.append(
                dg.RunRequest(
                    job_name=batch_job_name(provider),
                    tags={TAG_PROVIDER: provider, TAG_BATCH: provider, **tags},
                )
            )
    return requests
