"""Stopping a Dagster run of an account (``accounts disconnect``)."""

from __future__ import annotations

import dagster as dg

_CANCELABLE = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
}


def cancel_run(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Cancel a queued run or terminate a started one; False when it is not active (or cannot be)."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.status not in _CANCELABLE:
        return False
    try:
        return bool(instance.run_coordinator.cancel_run(run_id))
    except Exception:  # a launcher that cannot terminate: the job row is failed all the same
        return False
