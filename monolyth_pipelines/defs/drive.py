"""The Google Drive asset: one partition per connected google_drive account.

No `from __future__ import annotations` here: Dagster reads the asset's annotations at runtime.
"""

import dataclasses
import uuid
from typing import Any

import dagster as dg

from monolyth_pipelines.defs.connector_asset import (
    ASSET_RETRY_POLICY,
    ConnectorSpec,
    call_retry_policy,
    completeness_check_spec,
    run_connector_asset,
)
from monolyth_pipelines.defs.partitions import drive_accounts
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.google.clients import GoogleClients
from monolyth_pipelines.settings import ConfigError, DriveLimits
from monolyth_pipelines.sync import drive as drive_sync
from monolyth_pipelines.sync.run import SyncRun

DRIVE = ConnectorSpec(provider=drive_sync.PROVIDER, kind=drive_sync.KIND)
CONFIG_PATH = "ops.google_drive_files.config"


class DriveSyncConfig(dg.Config):
    """Per-run overrides of the deployment's limits (environment variables)."""

    max_files_per_run: int | None = None
    max_file_size_mb: float | None = None
    supported_mime_types: list[str] | None = None
    persistence: str | None = None  # "metadata" (Option A) or "vault" (Option B)
    include_shared_drives: bool | None = None
    # Confirms a settings change that tombstones more than MONOLYTH_MASS_TOMBSTONE_SHARE of the rows.
    allow_mass_tombstone: bool = False

    def limits(self) -> DriveLimits:
        """The run's limits, validated; raises ``ConfigError`` naming the bad variable or field."""
        base = DriveLimits.from_env()
        overrides: dict[str, Any] = {"allow_mass_tombstone": self.allow_mass_tombstone}
        if self.max_files_per_run is not None:
            overrides["max_files_per_run"] = self.max_files_per_run
        if self.max_file_size_mb is not None:
            overrides["max_file_size_mb"] = self.max_file_size_mb
        if self.supported_mime_types is not None:
            overrides["supported_mime_types"] = tuple(self.supported_mime_types)
        if self.persistence is not None:
            if self.persistence not in ("metadata", "vault"):
                raise ConfigError(
                    f"{CONFIG_PATH}.persistence", f"must be metadata or vault, got {self.persistence!r}"
                )
            overrides["import_to_vault"] = self.persistence == "vault"
        if self.include_shared_drives is not None:
            overrides["include_shared_drives"] = self.include_shared_drives
        named = {
            ("import_to_vault" if k == "persistence" else k): f"{CONFIG_PATH}.{k}"
            for k in self.model_fields_set
            if getattr(self, k) is not None
        }
        return dataclasses.replace(base, **overrides).validate(named)


@dg.asset(
    partitions_def=drive_accounts,
    retry_policy=ASSET_RETRY_POLICY,
    group_name="connectors",
    kinds={"google", "python"},
    pool="google_drive",
    check_specs=[completeness_check_spec("google_drive_files")],
    description="Metadata of each connected account's Google Drive files, in connector_files "
    "(and Vault with persistence=vault). One partition per account.",
)
def google_drive_files(
    context: dg.AssetExecutionContext,
    config: DriveSyncConfig,
    db: DatabaseResource,
    google: GoogleApiResource,
) -> dg.MaterializeResult:
    try:
        limits, config_error = config.limits(), None
    except ConfigError as exc:
        # Reported once the job row exists (run_connector_asset), so the refusal is on record.
        limits, config_error = DriveLimits(), exc

    def fetch(run: SyncRun, clients: GoogleClients, token_json: dict[str, Any], owner_id: uuid.UUID) -> None:
        drive_sync.DriveSync(
            run=run,
            clients=clients,
            limits=limits,
            policy=call_retry_policy(),
            owner_id=owner_id,
            token_json=token_json,
        ).sync()

    settings_meta = {
        "max_files_per_run": limits.max_files_per_run,
        "max_file_size_mb": limits.max_file_size_mb,
        "supported_mime_types": list(limits.supported_mime_types),
        "persistence": "vault" if limits.import_to_vault else "metadata",
        "include_shared_drives": limits.include_shared_drives,
    }
    return run_connector_asset(
        context,
        spec=DRIVE,
        db=db,
        google=google,
        settings_meta=settings_meta,
        fetch=fetch,
        config_error=config_error,
    )
