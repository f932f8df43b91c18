"""The Insights assets: three daily-partitioned output tables, their checks, and the sensor that
keeps today and yesterday current.

No `from __future__ import annotations` here: Dagster reads the annotations at runtime.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from monolyth_pipelines.defs.insights_results import (
    check_day,
    check_result,
    partitioned_asset_check,
    preview_table,
)
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.insights import checks, freshness
from monolyth_pipelines.store import insights as store
from monolyth_pipelines.store.schema import (
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)

GROUP = "insights"
# The first day a partition exists for; earlier history stays in the raw tables.
START_DATE = "2026-01-01"
CHART_DAYS = 30
BUILT_AT = "built_at"

# end_offset=1: today's partition exists (and fills up) while the day runs.
insights_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC", end_offset=1)

RUNS_KEY = dg.AssetKey(insights_sync_runs_daily.name)
USAGE_KEY = dg.AssetKey(insights_account_usage_daily.name)
DOCS_KEY = dg.AssetKey(insights_document_activity_daily.name)
TABLE_BY_KEY = {
    RUNS_KEY: insights_sync_runs_daily,
    USAGE_KEY: insights_account_usage_daily,
    DOCS_KEY: insights_document_activity_daily,
}
DESCRIPTIONS = {
    RUNS_KEY: "Per day (UTC), provider and job kind: runs by outcome, durations, items, API calls, "
    "failures per error code.",
    USAGE_KEY: "Per day (UTC) and account: runs by outcome, live items and bytes at the day's end, "
    "items added / modified / removed, Vault imports, freshness.",
    DOCS_KEY: "Per day (UTC) and document: its changes that day by kind, current title and type, "
    "first seen, last modified.",
}


def build_insights_asset(connector_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    """The three tables as one asset op, downstream of every enabled connector asset: each day
    reads what all of their partitions wrote."""
    deps = [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in connector_keys]

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(key, group_name=GROUP, deps=deps, kinds={"pandas", "sql"}, description=text)
            for key, text in DESCRIPTIONS.items()
        ],
        partitions_def=insights_partitions,
        can_subset=False,
    )
    def insights_daily(context: dg.AssetExecutionContext, db: DatabaseResource) -> Any:
        """One day's three tables, rebuilt together in one transaction."""
        from monolyth_pipelines.insights.build import build_day
        from monolyth_pipelines.insights.chart import runs_chart_markdown

        day = date.fromisoformat(context.partition_key)
        built = build_day(db.engine, day)
        with db.engine.connect() as conn:
            recent = store.read_days(
                conn, insights_sync_runs_daily, day - timedelta(days=CHART_DAYS - 1), day
            )
        frames, counts = built.by_table(), built.row_counts()
        for key, table in TABLE_BY_KEY.items():
            frame = frames[table.name]
            metadata: dict[str, Any] = {
                "day": day.isoformat(),
                "dagster/row_count": counts[table.name],
                "as_of": built.as_of.isoformat(),
                # When the build read its inputs: the refresh sensor compares changes with this.
                BUILT_AT: built.built_at.isoformat(),
                "preview": preview_table(frame),
            }
            if key == RUNS_KEY:
                metadata["runs_last_30_days"] = dg.MetadataValue.md(
                    runs_chart_markdown(recent, day, CHART_DAYS)
                )
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)

    return insights_daily


@partitioned_asset_check(
    asset=RUNS_KEY, partitions_def=insights_partitions, description="completed + failed = connector_jobs"
)
def runs_match_connector_jobs(
    context: dg.AssetCheckExecutionContext, db: DatabaseResource
) -> dg.AssetCheckResult:
    with db.engine.connect() as conn:
        return check_result(checks.runs_match_jobs(conn, check_day(context)))


@partitioned_asset_check(
    asset=USAGE_KEY,
    partitions_def=insights_partitions,
    description="live items = connector_files (current day)",
)
def live_items_match_connector_files(
    context: dg.AssetCheckExecutionContext, db: DatabaseResource
) -> dg.AssetCheckResult:
    with db.engine.connect() as conn:
        return check_result(checks.live_items_match_files(conn, check_day(context), datetime.now(UTC).date()))


def _no_negative_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @partitioned_asset_check(
        asset=key,
        name="no_negative_counts",
        partitions_def=insights_partitions,
        description="no count below 0",
    )
    def no_negative_counts(
        context: dg.AssetCheckExecutionContext, db: DatabaseResource
    ) -> dg.AssetCheckResult:
        with db.engine.connect() as conn:
            return check_result(checks.no_negative_counts(conn, TABLE_BY_KEY[key], check_day(context)))

    return no_negative_counts


ASSET_CHECKS = [
    runs_match_connector_jobs,
    live_items_match_connector_files,
    *(_no_negative_check(key) for key in TABLE_BY_KEY),
]

insights_job = dg.define_asset_job(
    "insights_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Rebuild one day (UTC) of the Insights tables, with their checks.",
)


def _last_built(instance: dg.DagsterInstance, day: date) -> datetime | None:
    """When the day's last build read its inputs (its ``built_at``), not when Dagster recorded the
    materialisation afterwards: a change committed in between is newer than the build's reads
    and must trigger a rebuild. Older materialisations without it fall back to their timestamp."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RUNS_KEY, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    read_at = materialization.metadata.get(BUILT_AT) if materialization is not None else None
    if read_at is not None and isinstance(read_at.value, str):
        return datetime.fromisoformat(read_at.value)
    return datetime.fromtimestamp(records[0].timestamp, UTC)


@dg.sensor(job=insights_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def insights_refresh(context: dg.SensorEvaluationContext, db: DatabaseResource) -> Any:
    """Materialise today's partition after connector runs finish, yesterday's once after
    midnight UTC, and any of the last days a late run changed (``insights.freshness``)."""
    now = datetime.now(UTC)
    with db.engine.connect() as conn:
        running = store.jobs_running(conn)
        changed = {
            d: store.latest_source_change(conn, *store.day_bounds(d)) for d in freshness.days_to_check(now)
        }
    built = {d: _last_built(context.instance, d) for d in changed}
    for day in freshness.stale_days(now, built, changed, running):
        final = now >= store.day_bounds(day)[1]
        stamp = (changed[day] or now).isoformat()
        yield dg.RunRequest(partition_key=day.isoformat(), run_key=f"insights:{day}:{stamp}:{final}")


def definitions() -> dg.Definitions:
    """Registered by definitions.py beside the connector definitions (resources come from there)."""
    from monolyth_pipelines.defs.insights_sharing import build_sharing_asset, build_sharing_check
    from monolyth_pipelines.defs.local_run import assets_by_provider

    keys = [a.key for a in assets_by_provider().values()]
    asset = build_insights_asset(keys)
    return dg.Definitions(
        assets=[asset, build_sharing_asset(keys, insights_partitions)],
        asset_checks=[*ASSET_CHECKS, build_sharing_check(insights_partitions)],
        jobs=[insights_job],
        sensors=[insights_refresh],
    )


def materialize_days(
    days: list[date], *, instance: dg.DagsterInstance, database_url: str | None = None
) -> list[dg.ExecuteInProcessResult]:
    """Materialise these partitions in this process, checks included (CLI, demo, tests)."""
    job = definitions_with_resources(database_url).resolve_job_def(insights_job.name)
    return [
        job.execute_in_process(
            partition_key=day.isoformat(),
            instance=instance,
            # Dagster's step-by-step console log is for debugging; callers print the outcome.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
        )
        for day in days
    ]


def definitions_with_resources(database_url: str | None = None) -> dg.Definitions:
    return dg.Definitions.merge(
        definitions(), dg.Definitions(resources={"db": DatabaseResource(url=database_url)})
    )
