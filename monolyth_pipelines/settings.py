"""Every environment knob of the project, read in one typed place.

Nothing else in the package reads ``os.environ`` directly, so the README's table of variables
and this module cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

GOOGLE_API_ENDPOINT = "https://www.googleapis.com"
GOOGLE_GMAIL_ENDPOINT = "https://gmail.googleapis.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

DOCS_MIME = "application/vnd.google-apps.document"
SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
SLIDES_MIME = "application/vnd.google-apps.presentation"
PDF_MIME = "application/pdf"
DEFAULT_SUPPORTED_MIME_TYPES: tuple[str, ...] = (DOCS_MIME, SHEETS_MIME, SLIDES_MIME, PDF_MIME)

FLAG_GMAIL = "int_gmail"


def _env(name: str, environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    return value if value not in (None, "") else None


def _int_env(name: str, default: int, environ: dict[str, str] | None = None) -> int:
    raw = _env(name, environ)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float_env(name: str, default: float, environ: dict[str, str] | None = None) -> float:
    raw = _env(name, environ)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _list_env(name: str, default: tuple[str, ...], environ: dict[str, str] | None = None) -> tuple[str, ...]:
    raw = _env(name, environ)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def data_dir(environ: dict[str, str] | None = None) -> Path:
    """The local data folder: embedded SQLite database and, locally, DAGSTER_HOME."""
    raw = _env("MONOLYTH_DATA_DIR", environ)
    return Path(raw).expanduser().resolve() if raw else (Path.cwd() / ".monolyth").resolve()


def database_url(environ: dict[str, str] | None = None) -> str:
    """``MONOLYTH_DATABASE_URL``, else an embedded SQLite file in the data folder."""
    url = _env("MONOLYTH_DATABASE_URL", environ)
    if url:
        return url
    folder = data_dir(environ)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'monolyth.db'}"


def feature_flags(environ: dict[str, str] | None = None) -> frozenset[str]:
    return frozenset(_list_env("MONOLYTH_FEATURE_FLAGS", (), environ))


def gmail_enabled(environ: dict[str, str] | None = None) -> bool:
    return FLAG_GMAIL in feature_flags(environ)


@dataclass(frozen=True)
class GoogleEndpoints:
    """Where every Google client of the project points.

    ``api_base`` unset means Google itself. When it is set (the emulator), Drive, Gmail and both
    batch URIs derive from it, because the client library would otherwise send batches to Google's
    host whatever ``api_endpoint`` says.
    """

    api_base: str | None = None
    token_uri: str = GOOGLE_TOKEN_URI

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> GoogleEndpoints:
        base = _env("MONOLYTH_GOOGLE_API_ENDPOINT", environ)
        return cls(
            api_base=base.rstrip("/") if base else None,
            token_uri=_env("MONOLYTH_GOOGLE_TOKEN_URI", environ) or GOOGLE_TOKEN_URI,
        )

    @property
    def drive_api_endpoint(self) -> str:
        return f"{self.api_base or GOOGLE_API_ENDPOINT}/drive/v3/"

    @property
    def drive_batch_uri(self) -> str:
        return f"{self.api_base or GOOGLE_API_ENDPOINT}/batch/drive/v3"

    @property
    def gmail_api_endpoint(self) -> str:
        return f"{self.api_base or GOOGLE_GMAIL_ENDPOINT}/"

    @property
    def gmail_batch_uri(self) -> str:
        return f"{self.api_base or GOOGLE_GMAIL_ENDPOINT}/batch/gmail/v1"


@dataclass(frozen=True)
class RetrySettings:
    """Backoff for Google calls inside a run, and the wait before Dagster retries a failed step."""

    call_base_seconds: float = 1.0
    call_cap_seconds: float = 32.0
    call_max_attempts: int = 6
    step_retry_wait_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RetrySettings:
        return cls(
            call_base_seconds=_float_env("MONOLYTH_RETRY_BASE_SECONDS", cls.call_base_seconds, environ),
            call_cap_seconds=_float_env("MONOLYTH_RETRY_CAP_SECONDS", cls.call_cap_seconds, environ),
            call_max_attempts=_int_env("MONOLYTH_RETRY_MAX_ATTEMPTS", cls.call_max_attempts, environ),
            step_retry_wait_seconds=_float_env(
                "MONOLYTH_STEP_RETRY_WAIT_SECONDS", cls.step_retry_wait_seconds, environ
            ),
        )


def stale_job_seconds(environ: dict[str, str] | None = None) -> float:
    """After this long without a heartbeat, a running job whose run is gone is taken over."""
    return _float_env("MONOLYTH_STALE_JOB_SECONDS", 600.0, environ)


@dataclass(frozen=True)
class DriveLimits:
    """The v1 limits of connectors-v1.md §2.2, plus the options the Drive sync takes."""

    max_files_per_run: int = 10_000
    max_file_size_mb: float = 25.0
    supported_mime_types: tuple[str, ...] = DEFAULT_SUPPORTED_MIME_TYPES
    include_shared_drives: bool = False
    import_to_vault: bool = False  # Option B
    page_size: int = 1000

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
    }
    # The settings whose change re-scopes the stored rows (a full re-list with tombstones).
    SCOPE_SETTINGS: ClassVar[tuple[str, ...]] = (
        "supported_mime_types",
        "max_file_size_mb",
        "include_shared_drives",
        "persistence",
    )

    def with_overrides(self, overrides: dict[str, Any]) -> DriveLimits:
        values = {k: v for k, v in overrides.items() if v is not None}
        if "supported_mime_types" in values:
            values["supported_mime_types"] = tuple(values["supported_mime_types"])
        if "persistence" in values:
            persistence = values.pop("persistence")
            if persistence not in ("metadata", "vault"):
                raise ValueError(f"persistence must be 'metadata' or 'vault', not {persistence!r}")
            values["import_to_vault"] = persistence == "vault"
        return dataclasses.replace(self, **values)

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
            include_shared_drives=(_env("DRIVE_INCLUDE_SHARED_DRIVES", environ) or "").lower()
            in ("1", "true", "yes"),
            import_to_vault=(_env("DRIVE_PERSISTENCE", environ) or "metadata").lower() == "vault",
        )


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

    CONFIG_FIELDS: ClassVar[dict[str, Any]] = {
        "label": str,
        "max_threads": int,
        "attachment_mime_types": list[str],
        "attachment_filename_pattern": str,
        "attachment_max_size_mb": float,
        "attachment_metadata": bool,
        "quota_units_per_second": float,
    }

    def with_overrides(self, overrides: dict[str, Any]) -> GmailLimits:
        values = {k: v for k, v in overrides.items() if v is not None}
        if "attachment_mime_types" in values:
            values["attachment_mime_types"] = tuple(values["attachment_mime_types"])
        return dataclasses.replace(self, **values)

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
        for item in _list_env("GMAIL_QUOTA_COSTS", (), environ):
            method, _, units = item.partition("=")
            try:
                costs[method.strip()] = int(units)
            except ValueError:
                raise ValueError(f"GMAIL_QUOTA_COSTS wants method=units items, got {item!r}") from None
        return cls(
            max_threads=_int_env("GMAIL_MAX_THREADS", cls.max_threads, environ),
            label=_env("GMAIL_LABEL", environ) or cls.label,
            attachment_mime_types=_list_env("GMAIL_ATTACHMENT_MIME_TYPES", (), environ),
            attachment_filename_pattern=_env("GMAIL_ATTACHMENT_FILENAME_PATTERN", environ),
            attachment_max_size_mb=_float_env("GMAIL_ATTACHMENT_MAX_SIZE_MB", 25.0, environ),
            quota_units_per_second=_float_env("GMAIL_QUOTA_UNITS_PER_SECOND", 250.0, environ),
            method_costs=costs,
            batch_size=_int_env("GMAIL_BATCH_SIZE", cls.batch_size, environ),
            attachment_metadata=(_env("GMAIL_ATTACHMENT_METADATA", environ) or "true").lower()
            not in ("0", "false", "no"),
        )


@dataclass(frozen=True)
class FreshnessSettings:
    """The change probe before scheduled runs and push notification channels (docs/operations.md)."""

    probe_enabled: bool = True
    probe_concurrency: int = 16
    probe_requests_per_second: float = 50.0
    # Accounts left unprobed when this runs out get a run, as without a probe: never stale.
    probe_time_budget_seconds: float = 40.0
    # The receiver's public base URL (e.g. https://hooks.example.com); unset: push is off.
    webhook_url: str | None = None
    # The shared secret Pub/Sub push carries (?token=); required for Gmail push.
    webhook_secret: str | None = None
    gmail_pubsub_topic: str | None = None
    # An account with a live channel is still probed this often (the safety net).
    push_poll_hours: float = 6.0
    channel_hours: float = 24.0
    renew_before_minutes: float = 60.0
    webhook_max_body_bytes: int = 65_536

    @property
    def push_enabled(self) -> bool:
        return self.webhook_url is not None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FreshnessSettings:
        url = _env("MONOLYTH_WEBHOOK_URL", environ)
        return cls(
            probe_enabled=(_env("MONOLYTH_CHANGE_PROBE", environ) or "on").lower()
            not in ("0", "off", "false"),
            probe_concurrency=_int_env("MONOLYTH_PROBE_CONCURRENCY", cls.probe_concurrency, environ),
            probe_requests_per_second=_float_env(
                "MONOLYTH_PROBE_REQUESTS_PER_SECOND", cls.probe_requests_per_second, environ
            ),
            probe_time_budget_seconds=_float_env(
                "MONOLYTH_PROBE_TIME_BUDGET_SECONDS", cls.probe_time_budget_seconds, environ
            ),
            webhook_url=url.rstrip("/") if url else None,
            webhook_secret=_env("MONOLYTH_WEBHOOK_SECRET", environ),
            gmail_pubsub_topic=_env("MONOLYTH_GMAIL_PUBSUB_TOPIC", environ),
            push_poll_hours=_float_env("MONOLYTH_PUSH_POLL_HOURS", cls.push_poll_hours, environ),
            channel_hours=_float_env("MONOLYTH_PUSH_CHANNEL_HOURS", cls.channel_hours, environ),
            renew_before_minutes=_float_env(
                "MONOLYTH_PUSH_RENEW_BEFORE_MINUTES", cls.renew_before_minutes, environ
            ),
            webhook_max_body_bytes=_int_env(
                "MONOLYTH_WEBHOOK_MAX_BODY_BYTES", cls.webhook_max_body_bytes, environ
            ),
        )
