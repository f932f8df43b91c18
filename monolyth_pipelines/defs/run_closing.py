"""Closing the connector_jobs rows of Dagster runs that ended without closing them: the bodies of
the reaper sensor and the run-status sensors (defs/automation.py registers them).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import dagster as dg

from monolyth_pipelines import settings
from monolyth_pipelines.defs.batch_sync import is_batch_run
from monolyth_pipelines.defs.partitions import LIVE_RUN_STATUSES, TAG_JOB_ID
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.sync import reaper


class _OfKind(Protocol):
    kind: str  # a ProviderAutomation: the job kind its runs sync


# Dagster's tag on a failed run it is about to retry (not exported by dagster).
WILL_RETRY_TAG = "dagster/will_retry"


def job_id_of(run: dg.DagsterRun) -> uuid.UUID | None:
    raw = run.tags.get(TAG_JOB_ID)
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def will_retry(run: dg.DagsterRun) -> bool:
    return run.tags.get(WILL_RETRY_TAG, "").lower() == "true"


def run_state(run: dg.DagsterRun) -> str:
    if run.status in LIVE_RUN_STATUSES:
        return reaper.RunState.ACTIVE
    return reaper.RunState.ENDED


def evaluate_reaper(
    context: dg.SensorEvaluationContext, db: DatabaseResource, automations: Sequence[_OfKind]
) -> dg.SkipReason:
    """Rows left running with no live run and no heartbeat for MONOLYTH_STALE_JOB_SECONDS → failed."""
    stale_after = timedelta(seconds=settings.stale_job_seconds())
    stale = reaper.stale_jobs(db.engine, [a.kind for a in automations], stale_after, datetime.now(UTC))
    if not stale:
        return dg.SkipReason("no stale running jobs")
    run_ids = sorted({job.run_id for job in stale if job.run_id})
    runs = context.instance.get_runs(dg.RunsFilter(run_ids=run_ids)) if run_ids else []
    states = {run.run_id: run_state(run) for run in runs}
    closed = reaper.reap_stale_jobs(db.engine, stale, states, stale_after)
    for c in closed:
        context.log.warning(f"reaped job {c.job_id} of account {c.account_id}: {c.reason}")
    return dg.SkipReason(f"{len(stale)} stale running job(s), {len(closed)} reaped")


def close_after_run_ended(db: DatabaseResource, run: dg.DagsterRun, reason: str) -> reaper.Closed | None:
    """The run-status sensors' body: close the job a failed or canceled run left open (a batch
    run: the one it was syncing; its other reservations go back to the queue)."""
    if is_batch_run(run):
        _released, closed = reaper.close_jobs_of_ended_batch(db.engine, run.run_id, reason)
        return closed[0] if closed else None
    job_id = job_id_of(run)
    if job_id is None and "dagster/partition" not in run.tags:
        return None  # not a connector sync run: every one of ours is partitioned
    if will_retry(run):
        # Dagster launches a retry run that claims the same job: not failed in between.
        return None
    return reaper.close_job_of_ended_run(db.engine, run.run_id, job_id, reason)
