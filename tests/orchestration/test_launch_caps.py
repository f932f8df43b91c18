"""Runs launched from the Dagster UI (the asset page's Materialize, a backfill) carry none of the
sensors' tags, and still obey the per-provider cap and the one-run-per-account rule: the run
queue of the shipped dagster.yaml, driven by the real queue and backfill daemons, and the UI's
own GraphQL mutations over the project's code location."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.test.utils import execute_dagster_graphql

from monolyth_pipelines.defs.connector_asset import COMPLETENESS_CHECK
from monolyth_pipelines.defs.partitions import TAG_PROVIDER
from tests.orchestration.conftest import REPO, project_concurrency, project_pool_limits
from tests.orchestration.deployment import Deployment, deployment
from tests.orchestration.helpers import connect_account, sync_now

ASSET = "google_drive_files"
PARTITIONS = "google_drive_accounts"
ACTIVE = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on InvalidSubsetError { message }
    ... on PythonError { message }
  }
}
"""
LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture
def queue(
    dagster_pg_url: str | None, fresh_db_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
    with deployment(dagster_pg_url, mode="record") as dep:
        yield dep


def graphql(dep: Deployment, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    result = execute_dagster_graphql(dep.workspace.create_request_context(), query, variables)
    assert not result.errors, result.errors
    return result.data


def materialize_from_the_asset_page(dep: Deployment, partition: str) -> str:
    """What the asset page's Materialize sends for one partition: the implicit asset job, the
    partition's tag, nothing of the project's."""
    data = graphql(
        dep,
        LAUNCH_RUN,
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": "monolyth_pipelines",
                    "repositoryName": "__repository__",
                    "pipelineName": "__ASSET_JOB",
                    "assetSelection": [{"path": [ASSET]}],
                    "assetCheckSelection": [{"assetKey": {"path": [ASSET]}, "name": COMPLETENESS_CHECK}],
                },
                "mode": "default",
                "runConfigData": {},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
            }
        },
    )["launchPipelineExecution"]
    assert data["__typename"] == "LaunchRunSuccess", data
    return data["run"]["runId"]


def backfill_from_the_asset_page(dep: Deployment, partitions: list[str]) -> None:
    data = graphql(
        dep,
        LAUNCH_BACKFILL,
        {"backfillParams": {"assetSelection": [{"path": [ASSET]}], "partitionNames": partitions}},
    )["launchPartitionBackfill"]
    assert data["__typename"] == "LaunchBackfillSuccess", data
    # One pass of the backfill daemon submits its runs to the queue.
    list(execute_backfill_iteration(dep.workspace, logging.getLogger("tests.orchestration.backfill")))


def in_progress(dep: Deployment) -> list[dg.DagsterRun]:
    return list(dep.instance.get_runs(dg.RunsFilter(statuses=ACTIVE)))


def drive_cap() -> int:
    limits = yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]["runs"]
    [cap] = [
        limit["limit"]
        for limit in limits["tag_concurrency_limits"]
        if limit["key"] == TAG_PROVIDER and limit["value"] == "google_drive"
    ]
    return cap


def test_the_pool_limits_make_dev_sets_are_the_per_provider_caps() -> None:
    limits = yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]
    caps = {
        limit["value"]: limit["limit"]
        for limit in limits["runs"]["tag_concurrency_limits"]
        if limit["key"] == TAG_PROVIDER
    }
    assert project_pool_limits() == caps
    assert limits["pools"] == {"granularity": "run", "default_limit": min(caps.values())}


def test_runs_from_the_asset_page_obey_the_provider_cap_and_one_run_per_account(
    queue: Deployment, engine: sa.Engine
) -> None:
    cap = drive_cap()
    # Two runs the way the app asks for them: pending jobs, which the sensor turns into runs.
    a, b = connect_account(engine), connect_account(engine)
    sync_now(engine, a), sync_now(engine, b)
    queue.tick(2)
    assert {r.tags["dagster/partition"] for r in queue.runs()} == {str(a), str(b)}

    # Then someone materializes partitions from the asset page: account a again, and new ones.
    others = [str(uuid.uuid4()) for _ in range(cap + 1)]
    queue.instance.add_dynamic_partitions(PARTITIONS, others)
    from_ui = [materialize_from_the_asset_page(queue, key) for key in [str(a), *others]]
    assert all(TAG_PROVIDER not in queue.instance.get_run_by_id(r).tags for r in from_ui)

    launched = queue.dequeue()
    assert len(launched) == cap, "the Drive cap counts every Drive run, tagged or not"
    queue.dequeue()
    running = in_progress(queue)
    assert len(running) == cap
    partitions = [r.tags["dagster/partition"] for r in running]
    assert len(set(partitions)) == len(partitions), "never two runs of one account"


def test_a_backfill_obeys_the_provider_cap_and_one_run_per_account(
    queue: Deployment, engine: sa.Engine
) -> None:
    cap = drive_cap()
    keys = [str(uuid.uuid4()) for _ in range(cap + 2)]
    queue.instance.add_dynamic_partitions(PARTITIONS, keys)
    first = materialize_from_the_asset_page(queue, keys[0])
    assert queue.dequeue() == [first]

    backfill_from_the_asset_page(queue, keys)
    queued = queue.instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    assert len(queued) == len(keys), "one run per partition"
    queue.dequeue()
    queue.dequeue()
    running = in_progress(queue)
    assert len(running) == cap
    partitions = [r.tags["dagster/partition"] for r in running]
    assert len(set(partitions)) == len(partitions), "the backfill's run of keys[0] waits for the first"


def test_pools_nobody_set_still_cap_every_run_at_the_default(
    dagster_pg_url: str | None, fresh_db_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
    default = project_concurrency()["pools"]["default_limit"]
    with deployment(dagster_pg_url, mode="record", pool_limits=False) as dep:
        keys = [str(uuid.uuid4()) for _ in range(default + 2)]
        dep.instance.add_dynamic_partitions(PARTITIONS, keys)
        # Dagster 1.13.27 gives a pool its default limit during the first queue pass that sees
        # it, but judges that pass by the pools it knew before: the very first pass of a new pool
        # is unlimited. `dagster instance concurrency set` (docs/operations.md) avoids that.
        materialize_from_the_asset_page(dep, keys[0])
        assert len(dep.dequeue()) == 1
        assert dep.instance.event_log_storage.get_concurrency_info("google_drive").slot_count == default
        for key in keys[1:]:
            materialize_from_the_asset_page(dep, key)
        dep.dequeue()
        dep.dequeue()
        assert len(in_progress(dep)) == default
