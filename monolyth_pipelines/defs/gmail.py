"""The Gmail asset: one partition per connected gmail account, loaded only with ``int_gmail``.

Nothing imports this module unless ``settings.gmail_enabled()`` (see ``local_run.assets_by_provider``).
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
from monolyth_pipelines.defs.partitions import gmail_accounts
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.google.clients import GoogleClients
from monolyth_pipelines.settings import ConfigError, GmailLimits
from monolyth_pipelines.sync import gmail as gmail_sync
from monolyth_pipelines.sync.run import SyncRun

GMAIL = ConnectorSpec(provider=gmail_sync.PROVIDER, kind=gmail_sync.KIND)


class GmailSyncConfig(dg.Config):
    """Per-run overrides of the deployment's limits (environment variables)."""

    label: str | None = None
    max_threads: int | None = None
    attachment_mime_types: list[str] | None = None
    attachment_filename_pattern: str | None = None
    attachment_max_size_mb: float | None = None
    attachment_metadata: bool | None = None
    quota_units_per_second: float | None = None

    def limits(self) -> GmailLimits:
        """The run's limits, validated; raises ``ConfigError`` naming the bad variable or field."""
        base = GmailLimits.from_env()
        overrides: dict[str, Any] = {
            name: getattr(self, name)
            for name in (
                "label",
                "max_threads",
                "attachment_filename_pattern",
                "attachment_max_size_mb",
                "attachment_metadata",
                "quota_units_per_second",
            )
            if getattr(self, name) is not None
        }
        if self.attachment_mime_types is not None:
            overrides["attachment_mime_types"] = tuple(self.attachment_mime_types)
        path = "ops.gmail_messages.config"
        named = {k: f"{path}.{k}" for k in self.model_fields_set if getattr(self, k) is not None}
        return dataclasses.replace(base, **overrides).validate(named)


@dg.asset(
    partitions_def=gmail_accounts,
    retry_policy=ASSET_RETRY_POLICY,
    group_name="connectors",
    kinds={"google", "python"},
    pool="gmail",
    check_specs=[completeness_check_spec("gmail_messages")],
    description="Metadata of the messages in the last N threads of one Gmail label (GMAIL_LABEL, "
    "default Contracts), in connector_files; selected attachments in Vault. One partition per "
    "account. Behind the int_gmail feature flag.",
)
def gmail_messages(
    context: dg.AssetExecutionContext,
    config: GmailSyncConfig,
    db: DatabaseResource,
    google: GoogleApiResource,
) -> dg.MaterializeResult:
    try:
        limits, config_error = config.limits(), None
    except ConfigError as exc:
        # Reported once the job row exists (run_connector_asset), so the refusal is on record.
        limits, config_error = GmailLimits(), exc

    def fetch(run: SyncRun, clients: GoogleClients, token_json: dict[str, Any], owner_id: uuid.UUID) -> None:
        gmail_sync.GmailSync(
            run=run,
            clients=clients,
            limits=limits,
            policy=call_retry_policy(),
            owner_id=owner_id,
            token_json=token_json,
        ).sync()

    settings_meta = {
        "label": limits.label,
        "max_threads": limits.max_threads,
        "attachment_metadata": limits.attachment_metadata,
        "attachment_mime_types": list(limits.attachment_mime_types),
        "attachment_filename_pattern": limits.attachment_filename_pattern,
        "attachment_max_size_mb": limits.attachment_max_size_mb,
        "quota_units_per_second": limits.quota_units_per_second,
        "batch_size": limits.batch_size,
    }
    return run_connector_asset(
        context,
        spec=GMAIL,
        db=db,
        google=google,
        settings_meta=settings_meta,
        fetch=fetch,
        config_error=config_error,
    )
