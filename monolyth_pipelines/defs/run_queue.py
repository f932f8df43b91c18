"""What the run queue holds, for the sensor that fills it (defs/automation.py)."""

from __future__ import annotations

import dagster as dg

from monolyth_pipelines.defs.partitions import TAG_PROVIDER


def waiting_runs(instance: dg.DagsterInstance, provider: str) -> int:
    """Runs of this provider created but not yet started by the run queue (one storage query)."""
    return instance.get_runs_count(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED],
            tags={TAG_PROVIDER: provider},
        )
    )
