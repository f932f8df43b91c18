"""The provider registry: one plain description per connector, and everything else derives from it.

The CLI's provider choices, the Dagster partitions, the asset (``defs/factory.py``), its job,
schedule and the sensors' provider lists all read ``enabled_providers()`` / ``all_providers()``.
A new connector is a ``register(ProviderSpec(...))`` line here, its domain module and its sync
module (see docs/architecture.md). No Dagster import: the CLI and the sync layer read this too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Protocol, Self

from monolyth_pipelines import settings


class Limits(Protocol):
    """What a provider's limits object offers: read from the environment, overridden per run,
    described in the job row, and compared with the last completed run's description."""

    # Per-run overrides the Dagster run config accepts: name -> type (each optional).
    CONFIG_FIELDS: ClassVar[dict[str, Any]]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self: ...

    def with_overrides(self, overrides: dict[str, Any]) -> Self: ...

    def settings_meta(self) -> dict[str, Any]: ...

    def changed_settings(self, before: dict[str, Any]) -> list[str]: ...


@dataclass(frozen=True)
class ProviderSpec:
    provider: str  # connector_accounts.provider
    kind: str  # connector_jobs.kind
    asset_name: str
    partitions_name: str
    limits: type[Limits]
    sync_class: str  # "module:Class", imported on first use (it pulls in the Google client)
    cron: str  # the scheduled cadence
    interval: timedelta
    description: str
    pool: str | None = None  # Dagster concurrency pool; the provider name when None
    flag: str | None = None  # a MONOLYTH_FEATURE_FLAGS flag the provider stays invisible without

    @property
    def pool_name(self) -> str:
        return self.pool or self.provider

    @property
    def job_name(self) -> str:
        return f"{self.provider}_sync"

    def enabled(self, environ: dict[str, str] | None = None) -> bool:
        return self.flag is None or self.flag in settings.feature_flags(environ)

    def load_sync_class(self) -> type[Any]:
        module, _, name = self.sync_class.partition(":")
        return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, ProviderSpec] = {}


def register(spec: ProviderSpec) -> ProviderSpec:
    _REGISTRY[spec.provider] = spec
    return spec


def unregister(provider: str) -> None:
    _REGISTRY.pop(provider, None)


def all_providers() -> list[ProviderSpec]:
    """Every registered provider, flagged or not (the CLI names them all, and refuses the flagged)."""
    return list(_REGISTRY.values())


def enabled_providers(environ: dict[str, str] | None = None) -> list[ProviderSpec]:
    return [p for p in _REGISTRY.values() if p.enabled(environ)]


def get(provider: str) -> ProviderSpec:
    return _REGISTRY[provider]


def by_kind(kind: str) -> ProviderSpec | None:
    return next((p for p in _REGISTRY.values() if p.kind == kind), None)


GOOGLE_DRIVE = register(
    ProviderSpec(
        provider="google_drive",
        kind="drive_import",
        asset_name="google_drive_files",
        partitions_name="google_drive_accounts",
        limits=settings.DriveLimits,
        sync_class="monolyth_pipelines.sync.drive:DriveSync",
        cron="0 * * * *",
        interval=timedelta(hours=1),
        description="Metadata of each connected account's Google Drive files, in connector_files "
        "(and Vault with persistence=vault). One partition per account.",
    )
)
# Offset from the hour so its ticks do not land on Drive's.
GMAIL = register(
    ProviderSpec(
        provider="gmail",
        kind="gmail_import",
        asset_name="gmail_messages",
        partitions_name="gmail_accounts",
        limits=settings.GmailLimits,
        sync_class="monolyth_pipelines.sync.gmail:GmailSync",
        cron="30 */6 * * *",
        interval=timedelta(hours=6),
        description="Metadata of the messages in the last N threads of one Gmail label (GMAIL_LABEL, "
        "default Contracts), in connector_files; selected attachments in Vault. One partition per "
        "account. Behind the int_gmail feature flag.",
        flag=settings.FLAG_GMAIL,
    )
)
