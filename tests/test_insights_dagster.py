"""The Insights assets through Dagster: materialisation metadata, checks that catch a corrupted
table, and the sensor that keeps today and yesterday current."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.defs import insights as insights_defs
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.insights.freshness import stale_days
from monolyth_pipelines.store import jobs
from monolyth_pipelines.store.files import upsert_files
from monolyth_pipelines.store.schema import (
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)
from tests.store.helpers import make_records, new_account


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def one_run(engine: sa.Engine, account: uuid.UUID, status: str, error: str | None = None) -> uuid.UUID:
    with engine.begin() as conn:
        job = jobs.start_job(
            conn, account_id=account, kind="drive_import", run_id=str(uuid.uuid4()), attempt=1
        )
        jobs.finish_job(conn, job.id, status, meta={"duration_ms": 1200, "api_calls": 3}, last_error=error)
    return job.id


@pytest.fixture
def synced(engine: sa.Engine) -> uuid.UUID:
    account = new_account(engine)
    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", make_records(4))
    one_run(engine, account, "completed")
    one_run(engine, account, "failed", "google_unavailable: Google API returned HTTP 500")
    return account


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in (
            ev.event_specific_data
            for ev in result.all_events
            if ev.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }


def test_a_materialisation_shows_a_preview_and_the_runs_chart_and_its_checks_pass(
    engine: sa.Engine, fresh_db_url: str, instance: dg.DagsterInstance, synced: uuid.UUID
) -> None:
    today = datetime.now(UTC).date()
    (result,) = insights_defs.materialize_days([today], instance=instance, database_url=fresh_db_url)
    assert result.success
    assert set(check_results(result).values()) == {True} and len(check_results(result)) == 6
    runs = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=insights_defs.RUNS_KEY, asset_partitions=[today.isoformat()]), limit=1
    ).records[0]
    metadata = runs.asset_materialization.metadata
    preview = metadata["preview"]
    assert isinstance(preview, dg.TableMetadataValue)
    assert preview.records[0].data["runs_completed"] == "1" and preview.records[0].data["runs_failed"] == "1"
    chart = metadata["runs_last_30_days"]
    assert isinstance(chart, dg.MarkdownMetadataValue)
    assert chart.value.startswith("![completed vs failed runs per provider](data:image/png;base64,iVBOR")
    assert metadata["dagster/row_count"].value == 1


@pytest.mark.parametrize(
    "corruption, failing",
    [
        (
            insights_sync_runs_daily.update().values(
                runs_completed=insights_sync_runs_daily.c.runs_completed + 1
            ),
            "insights_sync_runs_daily:runs_match_connector_jobs",
        ),
        (
            insights_account_usage_daily.update().values(live_items=3),
            "insights_account_usage_daily:live_items_match_connector_files",
        ),
        (
            insights_account_usage_daily.update().values(items_added=-1),
            "insights_account_usage_daily:no_negative_counts",
        ),
        (
            insights_document_activity_daily.update().values(changes=-2),
            "insights_document_activity_daily:no_negative_counts",
        ),
        (insights_sync_runs_daily.delete(), "insights_sync_runs_daily:runs_match_connector_jobs"),
    ],
)
def test_each_check_fails_on_a_corrupted_table(
    engine: sa.Engine,
    fresh_db_url: str,
    instance: dg.DagsterInstance,
    synced: uuid.UUID,
    corruption: sa.Executable,
    failing: str,
) -> None:
    today = datetime.now(UTC).date()
    assert insights_defs.materialize_days([today], instance=instance, database_url=fresh_db_url)[0].success
    with engine.begin() as conn:
        conn.execute(corruption)
    checks_only = dg.Definitions.merge(
        insights_defs.definitions_with_resources(fresh_db_url),
        dg.Definitions(
            jobs=[
                dg.define_asset_job(
                    "checks",
                    selection=dg.AssetSelection.checks_for_assets(*insights_defs.TABLE_BY_KEY),
                )
            ]
        ),
    ).resolve_job_def("checks")
    # A job of checks alone has no asset to take its partitioning from: the partition goes in
    # as the run tag Dagster itself sets.
    result = checks_only.execute_in_process(
        tags={"dagster/partition": today.isoformat()}, instance=instance, raise_on_error=False
    )
    outcomes = check_results(result)
    assert len(outcomes) == 5
    assert {name for name, passed in outcomes.items() if not passed} == {failing}


def test_the_sensor_builds_today_and_yesterday_then_waits_for_new_runs(
    engine: sa.Engine, fresh_db_url: str, instance: dg.DagsterInstance, synced: uuid.UUID
) -> None:
    resources = {"db": DatabaseResource(url=fresh_db_url)}

    def requested() -> list[str]:
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            return sorted(r.partition_key for r in insights_defs.insights_refresh(context) or [])

    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    assert requested() == [yesterday.isoformat(), today.isoformat()]
    insights_defs.materialize_days([yesterday, today], instance=instance, database_url=fresh_db_url)
    assert requested() == []
    one_run(engine, synced, "completed")
    assert requested() == [today.isoformat()]


def test_freshness_rules() -> None:
    day = date(2026, 3, 10)
    noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
    built = {day: noon - timedelta(hours=1), day - timedelta(days=1): noon - timedelta(hours=13)}
    # Yesterday was last built before midnight: rebuilt once; today is current.
    assert stale_days(noon, built, {}, jobs_running=0) == [day - timedelta(days=1)]
    # A late run that finished in an earlier day is picked up.
    late = {day - timedelta(days=3): noon - timedelta(minutes=5)}
    assert day - timedelta(days=3) in stale_days(noon, built, late, jobs_running=0)
    # Today waits while connector runs are going, but not forever.
    fresh = {day: noon - timedelta(minutes=2)}
    assert day not in stale_days(noon, built, fresh, jobs_running=1)
    assert day in stale_days(noon, built, fresh, jobs_running=0)
    stale_change = {day: noon - timedelta(minutes=31)}
    assert day in stale_days(noon, {day: noon - timedelta(hours=2)}, stale_change, jobs_running=1)
