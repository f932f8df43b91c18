"""Every environment knob of the project, read in one typed place.

Nothing else in the package reads ``os.environ`` directly, so the README's table of variables
and this module cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from monolyth_pipelines.settings_checks import (
    DRIVE_ENV_NAMES,
    GMAIL_ENV_NAMES,
    ConfigError,
    check_drive_limits,
    check_endpoint_override,
    check_gmail_limits,
    check_number,
    check_url,
    field_names,
    parse_bool,
    parse_number,
)

__all__ = ["ConfigError"]

GOOGLE_API_ENDPOINT = "https://www.googleapis.com"
GOOGLE_GMAIL_ENDPOINT = "https://gmail.googleapis.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"

DOCS_MIME = "application/vnd.google-apps.document"
SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
SLIDES_MIME = "application/vnd.google-apps.presentation"
PDF_MIME = "application/pdf"
DEFAULT_SUPPORTED_MIME_TYPES: tuple[str, ...] = (DOCS_MIME, SHEETS_MIME, SLIDES_MIME, PDF_MIME)

FLAG_GMAIL = "int_gmail"


def _env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    return value if value not in (None, "") else None


def _int_env(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    raw = _env(name, environ)
    return default if raw is None else parse_number(name, raw, int)


def _float_env(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    raw = _env(name, environ)
    return default if raw is None else parse_number(name, raw, float)


def _list_env(
    name: str, default: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    raw = _env(name, environ)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _bool_env(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    raw = _env(name, environ)
    return default if raw is None else parse_bool(name, raw)


def _choice_env(name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] | None) -> str:
    raw = (_env(name, environ) or default).strip().lower()
    if raw not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The local data folder: embedded SQLite database and, locally, DAGSTER_HOME."""
    raw = _env("MONOLYTH_DATA_DIR", environ)
    return Path(raw).expanduser().resolve() if raw else (Path.cwd() / ".monolyth").resolve()


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """``MONOLYTH_DATABASE_URL``, else an embedded SQLite file in the data folder."""
    url = _env("MONOLYTH_DATABASE_URL", environ)
    if url:
        return url
    folder = data_dir(environ)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'monolyth.db'}"


def feature_flags(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    return frozenset(_list_env("MONOLYTH_FEATURE_FLAGS", (), environ))


def gmail_enabled(environ: Mapping[str, str] | None = None) -> bool:
    return FLAG_GMAIL in feature_flags(environ)


@dataclass(frozen=True)
class GoogleEndpoints:
    """Where every Google client points, so where account tokens go: the deployment decides
    (environment), never run config; ``allowlist`` is what a run may pick besides.

    ``api_base`` unset means Google itself. When it is set (the emulator), Drive, Gmail and both
    batch URIs derive from it, because the client library would otherwise send batches to Google's
    host whatever ``api_endpoint`` says.
    """

    api_base: str | None = None
    token_uri: str = GOOGLE_TOKEN_URI
    # None: derived from api_base (the emulator serves both), else Google's.
    auth_uri_override: str | None = None
    revoke_uri_override: str | None = None
    allowlist: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GoogleEndpoints:
        base = _env("MONOLYTH_GOOGLE_API_ENDPOINT", environ)
        token_uri = _env("MONOLYTH_GOOGLE_TOKEN_URI", environ) or GOOGLE_TOKEN_URI
        allowlist = _list_env("MONOLYTH_GOOGLE_ENDPOINT_ALLOWLIST", (), environ)
        for url in allowlist:
            check_url("MONOLYTH_GOOGLE_ENDPOINT_ALLOWLIST", url)
        return cls(
            api_base=check_url("MONOLYTH_GOOGLE_API_ENDPOINT", base).rstrip("/") if base else None,
            token_uri=check_url("MONOLYTH_GOOGLE_TOKEN_URI", token_uri),
            auth_uri_override=_env("MONOLYTH_GOOGLE_AUTH_URI", environ),
            revoke_uri_override=_env("MONOLYTH_GOOGLE_REVOKE_URI", environ),
            allowlist=tuple(u.rstrip("/") for u in allowlist),
        )

    def with_override(self, *, api_endpoint: str | None, token_uri: str | None) -> GoogleEndpoints:
        """The endpoints a run asked for, refused unless the deployment listed them."""
        api_base = (api_endpoint or "").rstrip("/") or None
        for field_name, asked, deployed in (
            ("api_endpoint", api_base, self.api_base),
            ("token_uri", token_uri, self.token_uri),
        ):
            check_endpoint_override(f"resources.google.config.{field_name}", asked, deployed, self.allowlist)
        return dataclasses.replace(
            self, api_base=api_base or self.api_base, token_uri=token_uri or self.token_uri
        )

    @property
    def auth_uri(self) -> str:
        if self.auth_uri_override:
            return self.auth_uri_override
        return f"{self.api_base}/o/oauth2/auth" if self.api_base else GOOGLE_AUTH_URI

    @property
    def revoke_uri(self) -> str:
        if self.revoke_uri_override:
            return self.revoke_uri_override
        return f"{self.api_base}/revoke" if self.api_base else GOOGLE_REVOKE_URI

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
class OAuthClient:
    """The deployment's OAuth client (one per deployment, not per account)."""

    client_id: str
    client_secret: str = field(repr=False)


def oauth_client(environ: dict[str, str] | None = None) -> OAuthClient | None:
    """``MONOLYTH_GOOGLE_CLIENT_ID``/``_SECRET``, else the ``MONOLYTH_GOOGLE_CLIENT_SECRETS_FILE``
    (Google's client_secret.json, "installed" or "web"), else None."""
    client_id = _env("MONOLYTH_GOOGLE_CLIENT_ID", environ)
    secret = _env("MONOLYTH_GOOGLE_CLIENT_SECRET", environ)
    if client_id and secret:
        return OAuthClient(client_id, secret)
    path = _env("MONOLYTH_GOOGLE_CLIENT_SECRETS_FILE", environ)
    return oauth_client_from_file(Path(path)) if path else None


def oauth_client_from_file(path: Path) -> OAuthClient:
    import json

    try:
        data = json.loads(path.read_text())
        section = data.get("installed") or data.get("web") or data
        return OAuthClient(section["client_id"], section["client_secret"])
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(
            f"cannot read the OAuth client secrets file {path}: {exc.__class__.__name__} "
            "(Google's client_secret.json is expected)"
        ) from None


def token_keys(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """``MONOLYTH_TOKEN_KEYS``: the key ring for tokens at rest; the first key encrypts."""
    return _list_env("MONOLYTH_TOKEN_KEYS", (), environ)


@dataclass(frozen=True)
class RetrySettings:
    """Backoff for Google calls inside a run, and the wait before Dagster retries a failed step."""

    call_base_seconds: float = 1.0
    call_cap_seconds: float = 32.0
    call_max_attempts: int = 6
    step_retry_wait_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetrySettings:
        made = cls(
            call_base_seconds=_float_env("MONOLYTH_RETRY_BASE_SECONDS", cls.call_base_seconds, environ),
            call_cap_seconds=_float_env("MONOLYTH_RETRY_CAP_SECONDS", cls.call_cap_seconds, environ),
            call_max_attempts=_int_env("MONOLYTH_RETRY_MAX_ATTEMPTS", cls.call_max_attempts, environ),
            step_retry_wait_seconds=_float_env(
                "MONOLYTH_STEP_RETRY_WAIT_SECONDS", cls.step_retry_wait_seconds, environ
            ),
        )
        check_number("MONOLYTH_RETRY_BASE_SECONDS", made.call_base_seconds, minimum=0)
        check_number("MONOLYTH_RETRY_CAP_SECONDS", made.call_cap_seconds, minimum=made.call_base_seconds)
        check_number("MONOLYTH_RETRY_MAX_ATTEMPTS", made.call_max_attempts, minimum=1, maximum=100)
        check_number("MONOLYTH_STEP_RETRY_WAIT_SECONDS", made.step_retry_wait_seconds, minimum=0)
        return made


def stale_job_seconds(environ: Mapping[str, str] | None = None) -> float:
    """After this long without a heartbeat, a running job whose run is gone is taken over."""
    value = _float_env("MONOLYTH_STALE_JOB_SECONDS", 600.0, environ)
    check_number("MONOLYTH_STALE_JOB_SECONDS", value, minimum=0, exclusive_minimum=True)
    return value


def mass_tombstone_share(environ: Mapping[str, str] | None = None) -> float:
    """The share of an account's live rows a settings change may tombstone without confirmation."""
    value = _float_env("MONOLYTH_MASS_TOMBSTONE_SHARE", 0.5, environ)
    check_number("MONOLYTH_MASS_TOMBSTONE_SHARE", value, minimum=0, maximum=1)
    return value


def check_run_settings(environ: Mapping[str, str] | None = None) -> None:
    """Every provider-independent setting a run reads, parsed and range-checked at once."""
    GoogleEndpoints.from_env(environ)
    RetrySettings.from_env(environ)
    stale_job_seconds(environ)
    mass_tombstone_share(environ)


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

    CONFIG_FIELDS: ClassVar[dict[str, Any]] = {
        "label": str,
        "max_threads": int,
        "attachment_mime_types": list[str],
        "attachment_filename_pattern": str,
        "attachment_max_size_mb": float,
        "attachment_metadata": bool,
        "quota_units_per_second": float,
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
        ).validate()


def database_retry(environ: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(base, cap, attempts) of the backoff a run uses to wait out a database outage."""
    return (
        _float_env("MONOLYTH_DB_RETRY_BASE_SECONDS", 0.5, environ),
        _float_env("MONOLYTH_DB_RETRY_CAP_SECONDS", 8.0, environ),
        _int_env("MONOLYTH_DB_RETRY_MAX_ATTEMPTS", 8, environ),
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
