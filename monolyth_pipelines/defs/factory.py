"""The one asset factory: a provider's registry entry becomes its Dagster asset and run config.

No `from __future__ import annotations` here: Dagster reads the asset's annotations at runtime.
"""

import functools
from typing import Any

import dagster as dg

from monolyth_pipelines.defs.connector_asset import (
    ASSET_RETRY_POLICY,
    completeness_check_spec,
    run_connector_asset,
)
from monolyth_pipelines.defs.partitions import partitions_for
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.providers import ProviderSpec


@functools.cache
def config_class(spec: ProviderSpec) -> type[dg.Config]:
    """Per-run overrides of the deployment's limits (environment variables), one optional field
    per name in the limits' ``CONFIG_FIELDS``: ``ops: {<asset>: {config: {...}}}`` in the launchpad."""
    fields = spec.limits.CONFIG_FIELDS
    name = "".join(part.title() for part in spec.provider.split("_")) + "SyncConfig"
    namespace: dict[str, Any] = {
        "__annotations__": {field: kind | None for field, kind in fields.items()},
        "__doc__": f"Per-run overrides of the {spec.provider} limits (environment variables).",
        "__module__": __name__,
        **dict.fromkeys(fields),
    }
    return type(name, (dg.Config,), namespace)


@functools.cache
def build_asset(spec: ProviderSpec) -> dg.AssetsDefinition:
    config_cls = config_class(spec)

    @dg.asset(
        name=spec.asset_name,
        partitions_def=partitions_for(spec),
        retry_policy=ASSET_RETRY_POLICY,
        group_name="connectors",
        kinds={"google", "python"},
        pool=spec.pool_name,
        check_specs=[completeness_check_spec(spec.asset_name)],
        description=spec.description,
    )
    def connector_asset(
        context: dg.AssetExecutionContext,
        config: config_cls,  # type: ignore[valid-type]
        db: DatabaseResource,
        google: GoogleApiResource,
    ) -> dg.MaterializeResult:
        overrides = {field: getattr(config, field) for field in spec.limits.CONFIG_FIELDS}
        try:
            limits = spec.limits.from_env().with_overrides(overrides)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None
        return run_connector_asset(context, spec=spec, db=db, google=google, limits=limits)

    return connector_asset
