"""The providers' limits: read from the environment, overridden per run, range-checked before a
job opens, described in the job row and compared with the last run's."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from monolyth_pipelines.settings.env import (
    DEFAULT_SUPPORTED_MIME_TYPES,
    _bool_env,
    _choice_env,
    _env,
    _float_env,
    _int_env,
    _list_env,
    mass_tombstone_share,
)
from monolyth_pipelines.settings_checks import (
    DRIVE_ENV_NAMES,
    GMAIL_ENV_NAMES,
    ConfigError,
    check_drive_limits,
    check_gmail_limits,
    field_names,
)


@dataclass(frozen=True)
class DriveLimits:
    """The v1 limits of connectors-v1.md §2.2, plus the options the Drive sync takes."""

    max_files_per_run: int = 10_000
    max_file_size_mb: float = 25.0
    supported_mime_types: tuple[str, ...] = DEFAULT_SUPPORTED_MIME_TYPES
    include_shared_drives: bool = False
    import_to_vault: bool = False  # Option B
    page_size: int = 1000
    # A settings change may tombstone at most this share of live rows unless the run allows more.
    mass_tombstone_share: float = 0.5
    allow_mass_tombstone: bool = False

    @property
    def max_file_size_bytes(self) -> int:
        return int(self.max_file_size_mb * 1024 * 1024)

    # Per-run overrides (Dagster run config); the same names describe the run in meta_json.settings.
    CONFIG_FIELDS: ClassVar[dict[str, Any]] = {
        "max_files_per_run": int,
        "max_file_size_mb": float,
        "supported_mime_types": list[str],
        "persistence": str,  # "metadata" (Option A) or "vault" (Option B)
        "include_shared_drives": bool,
        # Confirms a settings change that tombstones more than MONOLYTH_MASS_TOMBSTONE_SHARE of the rows.
        "allow_mass_tombstone": bool,
    }
    # The settings whose change re-scopes the stored rows (a full re-list with tombstones).
    SCOPE_SETTINGS: ClassVar[tuple[str, ...]] = (
        "supported_mime_types",
        "max_file_size_mb",
        "include_shared_drives",
        "persistence",
    )

    def with_overrides(self, overrides: dict[str, Any], path: str = "run config") -> DriveLimits:
        """These limits with a run's overrides, validated; a bad value raises ``ConfigError``
        naming its run config path (``path`` + field)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        named = {k: f"{path}.{k}" for k in values}
        if "supported_mime_types" in values:
            values["supported_mime_types"] = tuple(values["supported_mime_types"])
        if "persistence" in values:
            persistence = values.pop("persistence")
            if persistence not in ("metadata", "vault"):
                raise ConfigError(named["persistence"], f"must be metadata or vault, got {persistence!r}")
            values["import_to_vault"] = persistence == "vault"
            named["import_to_vault"] = named.pop("persistence")
        return dataclasses.replace(self, **values).validate(named)

    def validate(self, overridden: Mapping[str, str] | None = None) -> DriveLimits:
        """Range-check every field; ``overridden`` maps fields a run set to their config path."""
        check_drive_limits(self, field_names(self, DRIVE_ENV_NAMES, overridden or {}))
        return self

    def settings_meta(self) -> dict[str, Any]:
        return {
            "max_files_per_run": self.max_files_per_run,
            "max_file_size_mb": self.max_file_size_mb,
            "supported_mime_types": list(self.supported_mime_types),
            "persistence": "vault" if self.import_to_vault else "metadata",
            "include_shared_drives": self.include_shared_drives,
        }

    def changed_settings(self, before: dict[str, Any]) -> list[str]:
        """The scope settings that differ from ``before`` (the last completed run's); [] with none."""
        if not before:
            return []
        now = self.settings_meta()
        return sorted(
            key
            for key in self.SCOPE_SETTINGS
            if (
                sorted(before.get(key) or []) != sorted(now[key])
                if key == "supported_mime_types"
                else before.get(key) != now[key]
            )
        )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DriveLimits:
        return cls(
            max_files_per_run=_int_env("MAX_FILES_PER_RUN", cls.max_files_per_run, environ),
            max_file_size_mb=_float_env("MAX_FILE_SIZE_MB", cls.max_file_size_mb, environ),
            supported_mime_types=_list_env("SUPPORTED_MIME_TYPES", DEFAULT_SUPPORTED_MIME_TYPES, environ),
            include_shared_drives=_bool_env("DRIVE_INCLUDE_SHARED_DRIVES", False, environ),
            import_to_vault=_choice_env("DRIVE_PERSISTENCE", "metadata", ("metadata", "vault"), environ)
            == "vault",
            mass_tombstone_share=mass_tombstone_share(environ),
        ).validate()


@dataclass(frozen=True)
class GmailLimits:
    max_threads: int = 100
    label: str = "Contracts"
    # Attachment selective import rule; empty mime list = import nothing.
    attachment_mime_types: tuple[str, ...] = ()
    attachment_filename_pattern: str | None = None
    attachment_max_size_mb: float = 25.0
    # Client-side pacer: per-user quota units per second and the per-method unit costs.
    quota_units_per_second: float = 250.0
    method_costs: dict[str, int] = field(
        default_factory=lambda: {
            "getProfile": 1,
            "labels.list": 1,
            "threads.list": 10,
            "threads.get": 10,
            "messages.get": 5,
            "history.list": 2,
            "attachments.get": 5,
        }
    )
    batch_size: int = 50
    # False stores no attachment metadata and fetches with format=metadata (headers only).
    attachment_metadata: bool = True
    # A reconcile (label change, expired history) may tombstone at most this share of live rows
    # unless the run allows more: the same guard as Drive's.
    mass_tombstone_share: float = 0.5
    allow_mass_tombstone: bool = False

    CONFIG_FIELDS: ClassVar[dict[str, Any]] = {
        "label": str,
        "max_threads": int,
        "attachment_mime_types": list[str],
        "attachment_filename_pattern": str,
        "attachment_max_size_mb": float,
        "attachment_metadata": bool,
        "quota_units_per_second": float,
        # Confirms a reconcile that tombstones more than MONOLYTH_MASS_TOMBSTONE_SHARE of the rows.
        "allow_mass_tombstone": bool,
    }

    def with_overrides(self, overrides: dict[str, Any], path: str = "run config") -> GmailLimits:
        """These limits with a run's overrides, validated (``ConfigError`` names the field)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if "attachment_mime_types" in values:
            values["attachment_mime_types"] = tuple(values["attachment_mime_types"])
        return dataclasses.replace(self, **values).validate({k: f"{path}.{k}" for k in values})

    def validate(self, overridden: Mapping[str, str] | None = None) -> GmailLimits:
        check_gmail_limits(self, field_names(self, GMAIL_ENV_NAMES, overridden or {}))
        return self

    def settings_meta(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "max_threads": self.max_threads,
            "attachment_metadata": self.attachment_metadata,
            "attachment_mime_types": list(self.attachment_mime_types),
            "attachment_filename_pattern": self.attachment_filename_pattern,
            "attachment_max_size_mb": self.attachment_max_size_mb,
            "quota_units_per_second": self.quota_units_per_second,
            "batch_size": self.batch_size,
        }

    def changed_settings(self, before: dict[str, Any]) -> list[str]:
        """Only the label re-scopes the stored rows: they and the cursor belong to one label."""
        return ["label"] if before.get("label") not in (None, self.label) else []

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> GmailLimits:
        costs = cls().method_costs
        if _env("GMAIL_QUOTA_COSTS", environ) is not None and not _list_env("GMAIL_QUOTA_COSTS", (), environ):
            raise ConfigError("GMAIL_QUOTA_COSTS", "is empty; write method=units items or leave it unset")
        for item in _list_env("GMAIL_QUOTA_COSTS", (), environ):
            method, sep, units = item.partition("=")
            try:
                if not sep:
                    raise ValueError
                costs[method.strip()] = int(units)
            except ValueError:
                raise ConfigError("GMAIL_QUOTA_COSTS", f"wants method=units items, got {item!r}") from None
        return cls(
            max_threads=_int_env("GMAIL_MAX_THREADS", cls.max_threads, environ),
            label=_env("GMAIL_LABEL", environ) or cls.label,
            attachment_mime_types=_list_env("GMAIL_ATTACHMENT_MIME_TYPES", (), environ),
            attachment_filename_pattern=_env("GMAIL_ATTACHMENT_FILENAME_PATTERN", environ),
            attachment_max_size_mb=_float_env("GMAIL_ATTACHMENT_MAX_SIZE_MB", 25.0, environ),
            quota_units_per_second=_float_env("GMAIL_QUOTA_UNITS_PER_SECOND", 250.0, environ),
            method_costs=costs,
            batch_size=_int_env("GMAIL_BATCH_SIZE", cls.batch_size, environ),
            attachment_metadata=_bool_env("GMAIL_ATTACHMENT_METADATA", True, environ),
            mass_tombstone_share=mass_tombstone_share(environ),
        ).validate()
