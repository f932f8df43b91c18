"""A run launcher for tests: DefaultRunLauncher's run worker without its gRPC hop.

``mode: subprocess`` starts ``dagster api execute_run`` in a child process, exactly the run worker
the default launcher starts, and answers run-monitoring health checks from that process's exit
status (as the Docker and Kubernetes launchers do from their containers), so the monitoring
daemon can notice a killed worker. ``mode: inline`` executes the run in the calling process, for
tests that watch the database from inside the run. ``mode: record`` starts no worker and marks
the run ``STARTED`` ten minutes ago: a long sync in progress, as the run queue sees it, for as
long as the test needs it to hold its place.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dagster._config import Field, Shape
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.execution.api import execute_run
from dagster._core.launcher.base import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, serialize_value
from dagster._serdes.config_class import ConfigurableClassData
from dagster._utils.hosted_user_process import recon_job_from_origin

REPO = Path(__file__).resolve().parents[2]


class TestRunLauncher(RunLauncher, ConfigurableClass):
    __test__ = False  # not a pytest class

    def __init__(self, inst_data: ConfigurableClassData | None = None, mode: str = "subprocess") -> None:
        self._inst_data = inst_data
        self.mode = mode
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.launched: list[str] = []
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> Any:
        return Shape({"mode": Field(str, is_required=False, default_value="subprocess")})

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: dict[str, Any]
    ) -> TestRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        assert run.job_code_origin is not None
        self.launched.append(run.run_id)
        if self.mode == "record":
            started = DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name)
            self._instance.report_dagster_event(started, run.run_id, timestamp=time.time() - 600)
            return
        if self.mode == "inline":
            job: ReconstructableJob = recon_job_from_origin(run.job_code_origin)
            execute_run(job, run, self._instance)
            return
        args = ExecuteRunArgs(
            job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref()
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        dagster = str(Path(sys.executable).with_name("dagster"))
        self.workers[run.run_id] = subprocess.Popen(
            [dagster, "api", "execute_run", serialize_value(args)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, run_id: str) -> None:
        """SIGKILL the run worker: no cleanup, no failure event, exactly like an OOM kill."""
        worker = self.workers[run_id]
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    def wait(self, run_id: str, timeout: float = 120) -> int:
        return self.workers[run_id].wait(timeout=timeout)

    def terminate(self, run_id: str) -> bool:
        worker = self.workers.get(run_id)
        if worker is None or worker.poll() is not None:
            return False
        worker.terminate()
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: Any) -> CheckRunHealthResult:
        worker = self.workers.get(run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.NOT_FOUND, "no worker process")
        code = worker.poll()
        if code is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        if code == 0:
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker exited with {code}")

    def dispose(self) -> None:
        for worker in self.workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)
