"""A whole deployment in one test: the real sensor daemon, run queue and run monitoring over the
project's code location, stepped by hand.

Only the process boundary differs from production: sensors evaluate in this process (an
in-process code location instead of a gRPC code server), and runs start through
``launcher.TestRunLauncher`` (``dagster api execute_run`` in a child process, or inline).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration

from tests.orchestration.conftest import REPO, project_concurrency, set_project_pool_limits
from tests.orchestration.launcher import TestRunLauncher

LOG = logging.getLogger("tests.orchestration.daemon")
# Past every sensor's minimum interval, so each tick evaluates all of them.
TICK = timedelta(seconds=61)


@contextmanager
def shifted_clock(offset: timedelta) -> Iterator[None]:
    """Dagster's clock runs ahead by ``offset`` but still ticks, so tick durations stay real."""
    with (
        mock.patch(
            "dagster._time._mockable_get_current_datetime", side_effect=lambda: datetime.now(UTC) + offset
        ),
        mock.patch(
            "dagster._time._mockable_get_current_timestamp",
            side_effect=lambda: time.time() + offset.total_seconds(),
        ),
    ):
        yield


class Deployment:
    def __init__(self, instance: dg.DagsterInstance, workspace: WorkspaceProcessContext) -> None:
        self.instance = instance
        self.workspace = workspace
        self.offset = timedelta(0)
        self.queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
        # These tests count the connector runs a deployment launches; the Insights sensor, which
        # launches runs of its own, has its own tests (tests/test_insights_dagster.py).
        location = workspace.create_request_context().get_code_location("monolyth_pipelines")
        for repository in location.get_repositories().values():
            for sensor in repository.get_sensors():
                if sensor.name == "insights_refresh":
                    instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)

    @property
    def launcher(self) -> TestRunLauncher:
        launcher = self.instance.run_launcher
        assert isinstance(launcher, TestRunLauncher)
        return launcher

    def tick(self, times: int = 1) -> None:
        """One evaluation of every running sensor, as the sensor daemon makes it."""
        for _ in range(times):
            self.offset += TICK
            with shifted_clock(self.offset):
                list(execute_sensor_iteration(self.workspace, LOG, None, None))

    def last_tick_seconds(self) -> dict[str, float]:
        """How long each sensor's latest tick took, from the ticks the daemon recorded."""
        location = self.workspace.create_request_context().get_code_location("monolyth_pipelines")
        durations = {}
        for repository in location.get_repositories().values():
            for sensor in repository.get_sensors():
                ticks = self.instance.get_ticks(sensor.get_remote_origin_id(), sensor.selector_id, limit=1)
                if ticks and ticks[0].end_timestamp:
                    durations[sensor.name] = ticks[0].end_timestamp - ticks[0].timestamp
        return durations

    def dequeue(self) -> list[str]:
        """One pass of the run queue; returns the run ids it launched."""
        before = len(self.launcher.launched)
        list(self.queue.run_iteration(self.workspace))
        return self.launcher.launched[before:]

    def monitor(self) -> None:
        """One pass of run monitoring (worker health checks, timeouts)."""
        list(execute_run_monitoring_iteration(self.workspace, LOG))

    def runs(self, **tags: str) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(dg.RunsFilter(tags=tags) if tags else None, ascending=True))

    def wait_for(self, predicate: Any, timeout: float = 60, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)


@contextmanager
def deployment(
    dagster_pg_url: str | None,
    mode: str,
    module: str = "monolyth_pipelines.definitions",
    *,
    pool_limits: bool = True,
) -> Iterator[Deployment]:
    """``pool_limits``: set each provider's pool limit as `make dev` does (else the default)."""
    overrides: dict[str, Any] = {
        "run_launcher": {
            "module": "tests.orchestration.launcher",
            "class": "TestRunLauncher",
            "config": {"mode": mode},
        },
        "concurrency": project_concurrency(),
        "run_monitoring": {"enabled": True, "poll_interval_seconds": 1, "max_resume_run_attempts": 0},
    }
    if dagster_pg_url:
        overrides["storage"] = {"postgres": {"postgres_url": dagster_pg_url}}
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=module,
            attribute="defs",
            working_directory=str(REPO),
        ),
        location_name="monolyth_pipelines",
    )
    # A test waits for its runs to end (an inline run returns only then): a batch run must not wait
    # for more rows after its last one (MONOLYTH_SYNC_BATCH_LINGER_SECONDS) meanwhile.
    linger = "MONOLYTH_SYNC_BATCH_LINGER_SECONDS"
    set_linger = linger not in os.environ
    if set_linger:
        os.environ[linger] = "0"
    try:
        with (
            dg.instance_for_test(overrides=overrides) as instance,
            create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as workspace,
        ):
            if pool_limits:
                set_project_pool_limits(instance)
            yield Deployment(instance, workspace)
    finally:
        if set_linger:
            os.environ.pop(linger, None)
