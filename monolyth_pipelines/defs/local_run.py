"""Materialising one account's partition in this process, for the CLI and tests.

The run goes through Dagster exactly as a sensor-launched one does (same asset, same resources,
run history in the local instance); only the executor is in-process.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import dagster as dg

from monolyth_pipelines import providers, settings
from monolyth_pipelines.defs.factory import build_asset
from monolyth_pipelines.defs.partitions import TAG_PROVIDER, partitions_for
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource


def local_instance() -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME, else one in the local data folder beside the embedded database."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    home = settings.data_dir() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.from_config(str(home))


def assets_by_provider() -> dict[str, dg.AssetsDefinition]:
    """The asset of every enabled provider (a flagged one only with its flag)."""
    return {spec.provider: build_asset(spec) for spec in providers.enabled_providers()}


def ensure_partition(instance: dg.DagsterInstance, provider: str, account_id: uuid.UUID) -> None:
    partitions = partitions_for(providers.get(provider))
    assert partitions.name is not None
    if not instance.has_dynamic_partition(partitions.name, str(account_id)):
        instance.add_dynamic_partitions(partitions.name, [str(account_id)])


def materialize_account(
    provider: str,
    account_id: uuid.UUID,
    *,
    instance: dg.DagsterInstance,
    run_config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    database_url: str | None = None,
) -> dg.ExecuteInProcessResult:
    asset = assets_by_provider()[provider]
    ensure_partition(instance, provider, account_id)
    return dg.materialize(
        [asset],
        partition_key=str(account_id),
        instance=instance,
        resources={"db": DatabaseResource(url=database_url), "google": GoogleApiResource()},
        run_config=run_config,
        tags={TAG_PROVIDER: provider, **(tags or {})},
        raise_on_error=False,
    )
