"""One dynamic partition per connected account, keyed by the account's UUID, and the run tags and
run statuses the assets and sensors share.

The UUID, never an e-mail address: the key shows in the UI, in run tags and in logs.
"""

from __future__ import annotations

import functools

import dagster as dg

from monolyth_pipelines.providers import ProviderSpec

# Run tags the sensors and schedules set; dagster.yaml limits concurrent runs by them.
TAG_JOB_ID = "monolyth/job_id"
TAG_PROVIDER = "monolyth/provider"

# A Dagster run in one of these may still write its own outcome to its job row: it is alive.
LIVE_RUN_STATUSES = frozenset(
    {
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    }
)


@functools.cache
def _partitions(name: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=name)


def partitions_for(spec: ProviderSpec) -> dg.DynamicPartitionsDefinition:
    """The provider's partitions: one object per name, shared by its asset, job and sensors."""
    return _partitions(spec.partitions_name)
