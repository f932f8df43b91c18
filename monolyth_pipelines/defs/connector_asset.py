"""What every connector asset does around its provider's fetch loop, written once.

Reads run identity from Dagster, drives ``SyncRun`` (job row, events, counters), maps errors to
retry or no retry, and turns the counters into the metadata the Dagster UI shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from monolyth_pipelines import settings
from monolyth_pipelines.defs.partitions import LIVE_RUN_STATUSES, TAG_JOB_ID
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.errors import safe_message
from monolyth_pipelines.google.retry import Backoff
from monolyth_pipelines.providers import Limits, ProviderSpec
from monolyth_pipelines.store.schema import connector_files
from monolyth_pipelines.sync.one_account import AccountSyncer
from monolyth_pipelines.sync.run import DEFAULT_STALE_AFTER, RunIdentity, SyncRun

# Dagster-level retries for what survived the in-run backoff (Google down for minutes).
# Permanent errors raise Failure(allow_retries=False) and never reach it. The asset raises
# RetryRequested itself, which Dagster honours before the policy, so the wait is computed from
# the policy here (step_retry_wait); the policy's own delay only serves interrupted steps.
ASSET_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2,
    delay=settings.RetrySettings.step_retry_wait_seconds,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def step_retry_wait(retry_number: int, retry: settings.RetrySettings) -> float:
    """Seconds before the ``retry_number``-th retry of a step (1 = the first): the asset policy's
    exponential backoff and jitter over ``MONOLYTH_STEP_RETRY_WAIT_SECONDS``, capped at
    ``MONOLYTH_STEP_RETRY_CAP_SECONDS``.

    With the default base of 10 s the first retry waits 0-20 s and the second 20-40 s, so runs
    that failed together in an outage neither come back together nor all at once after it.
    """
    policy = dg.RetryPolicy(
        max_retries=ASSET_RETRY_POLICY.max_retries,
        delay=retry.step_retry_wait_seconds,
        backoff=ASSET_RETRY_POLICY.backoff,
        jitter=ASSET_RETRY_POLICY.jitter,
    )
    return min(retry.step_retry_cap_seconds, max(0.0, float(policy.calculate_delay(retry_number))))


def call_retry_policy() -> Backoff:
    """Within one attempt, each Google call is retried with capped exponential backoff and jitter."""
    retry = settings.RetrySettings.from_env()
    return Backoff(
        base=retry.call_base_seconds, cap=retry.call_cap_seconds, max_attempts=retry.call_max_attempts
    )


PREVIEW_ROWS = 10
COMPLETENESS_CHECK = "sync_completeness"


def completeness_check_spec(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        COMPLETENESS_CHECK,
        asset=asset_name,
        description="Warns when a sync saw nothing where the account held many items, or when most "
        "of an account left in one run.",
    )


def run_connector_asset(
    context: dg.AssetExecutionContext,
    *,
    spec: ProviderSpec,
    db: DatabaseResource,
    google: GoogleApiResource,
    limits: Limits,
    config_error: settings.ConfigError | None = None,
) -> dg.MaterializeResult:
    """``config_error``: the run's limits did not validate; the run opens its job, fails it as
    ``bad_config`` and writes nothing else."""
    engine = db.engine
    stale_after = DEFAULT_STALE_AFTER
    try:
        settings.check_run_settings()
        stale_after = timedelta(seconds=settings.stale_job_seconds())
    except settings.ConfigError as exc:
        config_error = config_error or exc
    try:
        account_id = uuid.UUID(context.partition_key)
    except ValueError:
        raise dg.Failure(
            f"partition key {context.partition_key!r} is not an account id", allow_retries=False
        ) from None
    job_tag = context.run.tags.get(TAG_JOB_ID)
    identity = RunIdentity(
        account_id=account_id,
        provider=spec.provider,
        kind=spec.kind,
        run_id=context.run.run_id,
        attempt=context.retry_number + 1,
        job_id=uuid.UUID(job_tag) if job_tag else None,
    )

    syncer = account_syncer(context.instance, spec, db, google, stale_after, context.log.info)
    outcome = syncer.sync(
        identity,
        limits,
        may_retry=context.retry_number < ASSET_RETRY_POLICY.max_retries,
        config_error=config_error,
    )
    if outcome.busy is not None:
        busy = outcome.busy
        # Not a failed sync: no job was opened and nothing is written; one line says who holds it.
        raise dg.Failure(
            description=busy.message,
            metadata={
                "error_code": str(busy.code),
                "job_id": str(busy.job_id),
                "holder_run_id": busy.holder_run_id or "",
                "last_seen": busy.last_seen,
                "takeover_at": busy.takeover_at,
            },
            allow_retries=False,
        )
    if outcome.error is not None:
        error = outcome.error
        if outcome.record_error is not None:
            # Recording failed too (database gone?): say so, but neither exception's text (which
            # may quote rows, titles or SQL parameters) reaches Dagster's event log.
            raise dg.Failure(
                description=f"{error.code}: {error.message}; recording the failure also failed: "
                f"{outcome.record_error.message}",
                metadata={"error_code": str(error.code), "job_id": outcome.job_id},
                allow_retries=False,
            )
        if outcome.will_retry:
            # Dagster re-runs the step after the wait; the job row stays running meanwhile.
            # retry_number + 1 is the attempt number Dagster's own policy would pass.
            wait = step_retry_wait(context.retry_number + 1, settings.RetrySettings.from_env())
            context.log.error(f"sync failed: {error.code}: {error.message} (will retry in {wait:.1f} s)")
            raise dg.RetryRequested(max_retries=ASSET_RETRY_POLICY.max_retries, seconds_to_wait=wait)
        context.log.error(f"sync failed: {error.code}: {error.message} (will retry: False)")
        raise dg.Failure(
            description=f"{error.code}: {error.message}",
            metadata={"error_code": str(error.code), "job_id": outcome.job_id},
            allow_retries=False,
        )
    assert outcome.meta is not None
    run, meta = outcome.run, outcome.meta

    for warning in meta["counters"]["warnings"]:
        context.log.warning(warning)
    metadata, completeness = materialization_of(engine, account_id, meta, run, context.log.warning)
    return dg.MaterializeResult(metadata=metadata, check_results=[completeness])


def account_syncer(
    instance: dg.DagsterInstance,
    spec: ProviderSpec,
    db: DatabaseResource,
    google: GoogleApiResource,
    stale_after: timedelta,
    log: Callable[[str], None],
) -> AccountSyncer:
    def is_run_alive(run_id: str) -> bool:
        # A run this instance does not know may belong to another instance (the CLI's, another
        # deployment's): only its heartbeat's age can tell it dead.
        run = instance.get_run_by_id(run_id)
        return run is None or run.status in LIVE_RUN_STATUSES

    return AccountSyncer(
        engine=db.engine,
        sync_class=spec.load_sync_class(),
        clients_for=google.clients_for,
        check_endpoints=google.endpoints,
        call_policy=call_retry_policy,
        is_run_alive=is_run_alive,
        stale_after=stale_after,
        log=log,
    )


def materialization_of(
    engine: sa.Engine,
    account_id: uuid.UUID,
    meta: dict[str, Any],
    run: SyncRun,
    warn: Callable[[str], None],
) -> tuple[dict[str, Any], dg.AssetCheckResult]:
    """What a completed sync reports on its partition: the metadata the UI shows, and the
    completeness check."""
    warnings = meta["counters"]["warnings"]
    # A run that saw nothing where thousands lived, or lost most of an account at once, must not
    # look like a quiet success: the check shows as a warning on the asset in the UI.
    completeness = dg.AssetCheckResult(
        check_name=COMPLETENESS_CHECK,
        passed=not warnings,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(warnings) or "the run saw what the account held",
        metadata={"warnings": dg.MetadataValue.json(warnings)},
    )
    try:
        metadata = materialization_metadata(engine, account_id, meta, run)
    except Exception as exc:
        # The job is already completed: a failure here must not fail the step, or Dagster's
        # retry would run the sync again over a closed job. The counters are in meta_json.
        warn(f"could not build the materialization metadata: {safe_message(str(exc))}")
        metadata = {"job_id": str(run.job_id), "metadata_error": safe_message(str(exc))}
    return metadata, completeness


def materialization_metadata(
    engine: sa.Engine, account_id: uuid.UUID, meta: dict[str, Any], run: SyncRun
) -> dict[str, Any]:
    counters = meta["counters"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                connector_files.c.external_id,
                connector_files.c.title,
                connector_files.c.mime,
                connector_files.c.size,
                connector_files.c.modified_at,
            )
            .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
            .order_by(connector_files.c.modified_at.desc())
            .limit(PREVIEW_ROWS)
        ).all()
        live = conn.execute(
            sa.select(sa.func.count())
            .select_from(connector_files)
            .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
        ).scalar_one()
    preview = dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "external_id": r.external_id,
                    "title": safe_message(r.title or ""),
                    "mime": r.mime or "",
                    "size": r.size if r.size is not None else -1,
                    "modified_at": r.modified_at.isoformat() if r.modified_at else "",
                }
            )
            for r in rows
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("external_id", "string"),
                dg.TableColumn("title", "string"),
                dg.TableColumn("mime", "string"),
                dg.TableColumn("size", "int"),
                dg.TableColumn("modified_at", "string"),
            ]
        ),
    )
    return {
        "job_id": str(run.job_id),
        "mode": counters["mode"],
        "fetched": counters["seen"],
        "inserted": counters["inserted"],
        "updated": counters["updated"],
        "unchanged": counters["unchanged"],
        "deleted": counters["tombstoned_total"],
        "deleted_by_reason": dg.MetadataValue.json(counters["tombstoned"]),
        "skipped": counters["skipped_total"],
        "skipped_by_reason": dg.MetadataValue.json(counters["skipped"]),
        "vault_imported": counters["vault_imported"],
        "live_items": live,
        "api_calls": meta["api_calls"],
        "retries": counters["retries"],
        "duration_ms": meta["duration_ms"],
        "limit_reached": counters["limit_reached"],
        "warnings": dg.MetadataValue.json(counters["warnings"]),
        "preview": preview,
    }
