"""Every environment knob of the project, read in one typed place.

Nothing else in the package reads ``os.environ`` directly, so the README's table of variables
and this package cannot drift apart. The subjects live in submodules (env, limits, freshness);
every name is importable from ``monolyth_pipelines.settings``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monolyth_pipelines.settings.env import (
    DEFAULT_SUPPORTED_MIME_TYPES as DEFAULT_SUPPORTED_MIME_TYPES,
)
from monolyth_pipelines.settings.env import (
    DOCS_MIME as DOCS_MIME,
)
from monolyth_pipelines.settings.env import (
    FLAG_GMAIL as FLAG_GMAIL,
)
from monolyth_pipelines.settings.env import (
    GOOGLE_ADMIN_ENDPOINT as GOOGLE_ADMIN_ENDPOINT,
)
from monolyth_pipelines.settings.env import (
    GOOGLE_API_ENDPOINT as GOOGLE_API_ENDPOINT,
)
from monolyth_pipelines.settings.env import (
    GOOGLE_AUTH_URI as GOOGLE_AUTH_URI,
)
from monolyth_pipelines.settings.env import (
    GOOGLE_GMAIL_ENDPOINT as GOOGLE_GMAIL_ENDPOINT,
)
from monolyth_pipelines.settings.env import (
    GOOGLE_REVOKE_URI as GOOGLE_REVOKE_URI,
)
from monolyth_pipelines.settings.env import (
    GOOGLE_TOKEN_URI as GOOGLE_TOKEN_URI,
)
from monolyth_pipelines.settings.env import (
    PDF_MIME as PDF_MIME,
)
from monolyth_pipelines.settings.env import (
    SHEETS_MIME as SHEETS_MIME,
)
from monolyth_pipelines.settings.env import (
    SLIDES_MIME as SLIDES_MIME,
)
from monolyth_pipelines.settings.env import (
    _bool_env as _bool_env,
)
from monolyth_pipelines.settings.env import (
    _choice_env as _choice_env,
)
from monolyth_pipelines.settings.env import (
    _env as _env,
)
from monolyth_pipelines.settings.env import (
    _float_env as _float_env,
)
from monolyth_pipelines.settings.env import (
    _int_env as _int_env,
)
from monolyth_pipelines.settings.env import (
    _list_env as _list_env,
)
from monolyth_pipelines.settings.env import (
    data_dir as data_dir,
)
from monolyth_pipelines.settings.env import (
    database_url as database_url,
)
from monolyth_pipelines.settings.env import (
    feature_flags as feature_flags,
)
from monolyth_pipelines.settings.env import (
    gmail_enabled as gmail_enabled,
)
from monolyth_pipelines.settings.env import (
    mass_tombstone_share as mass_tombstone_share,
)
from monolyth_pipelines.settings.env import (
    stale_job_seconds as stale_job_seconds,
)
from monolyth_pipelines.settings.freshness import (
    FreshnessSettings as FreshnessSettings,
)
from monolyth_pipelines.settings.limits import (
    DriveLimits as DriveLimits,
)
from monolyth_pipelines.settings.limits import (
    GmailLimits as GmailLimits,
)
from monolyth_pipelines.settings.run_variables import (
    NOT_RUN_VARIABLES as NOT_RUN_VARIABLES,
)
from monolyth_pipelines.settings.run_variables import (
    RUN_VARIABLES as RUN_VARIABLES,
)
from monolyth_pipelines.settings_checks import (
    ConfigError,
    check_endpoint_override,
    check_number,
    check_url,
)

__all__ = ["ConfigError"]


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
    def directory_api_endpoint(self) -> str:
        """Admin SDK Directory (admin directory_v1: servicePath is empty, paths start admin/...)."""
        return f"{self.api_base or GOOGLE_ADMIN_ENDPOINT}/"

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
    """Backoff for Google calls inside a run, and the wait before Dagster retries a failed step:
    ``step_retry_wait_seconds`` is the base of the step retry's exponential, jittered wait,
    ``step_retry_cap_seconds`` its ceiling."""

    call_base_seconds: float = 1.0
    call_cap_seconds: float = 32.0
    call_max_attempts: int = 6
    step_retry_wait_seconds: float = 10.0
    step_retry_cap_seconds: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetrySettings:
        made = cls(
            call_base_seconds=_float_env("MONOLYTH_RETRY_BASE_SECONDS", cls.call_base_seconds, environ),
            call_cap_seconds=_float_env("MONOLYTH_RETRY_CAP_SECONDS", cls.call_cap_seconds, environ),
            call_max_attempts=_int_env("MONOLYTH_RETRY_MAX_ATTEMPTS", cls.call_max_attempts, environ),
            step_retry_wait_seconds=_float_env(
                "MONOLYTH_STEP_RETRY_WAIT_SECONDS", cls.step_retry_wait_seconds, environ
            ),
            step_retry_cap_seconds=_float_env(
                "MONOLYTH_STEP_RETRY_CAP_SECONDS", cls.step_retry_cap_seconds, environ
            ),
        )
        check_number("MONOLYTH_RETRY_BASE_SECONDS", made.call_base_seconds, minimum=0)
        check_number("MONOLYTH_RETRY_CAP_SECONDS", made.call_cap_seconds, minimum=made.call_base_seconds)
        check_number("MONOLYTH_RETRY_MAX_ATTEMPTS", made.call_max_attempts, minimum=1, maximum=100)
        check_number("MONOLYTH_STEP_RETRY_WAIT_SECONDS", made.step_retry_wait_seconds, minimum=0)
        step_cap, step_base = made.step_retry_cap_seconds, made.step_retry_wait_seconds
        check_number("MONOLYTH_STEP_RETRY_CAP_SECONDS", step_cap, minimum=step_base)
        return made


def check_run_settings(environ: Mapping[str, str] | None = None) -> None:
    """Every provider-independent setting a run reads, parsed and range-checked at once."""
    GoogleEndpoints.from_env(environ)
    RetrySettings.from_env(environ)
    stale_job_seconds(environ)
    mass_tombstone_share(environ)


def database_retry(environ: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(base, cap, attempts) of the backoff a run uses to wait out a database outage."""
    return (
        _float_env("MONOLYTH_DB_RETRY_BASE_SECONDS", 0.5, environ),
        _float_env("MONOLYTH_DB_RETRY_CAP_SECONDS", 8.0, environ),
        _int_env("MONOLYTH_DB_RETRY_MAX_ATTEMPTS", 8, environ),
    )


@dataclass(frozen=True)
class BatchSettings:
    """How incremental syncs share a run (defs/batch_sync.py; docs/architecture.md).

    ``size`` 0 turns batching off: every pending job gets a run of its own, as first syncs do.
    """

    size: int = 20  # jobs a batch run reserves at a time
    linger_seconds: float = 20.0  # how long an idle batch run waits for new rows before it ends
    max_seconds: float = 900.0  # after this a batch run reserves nothing more and ends
    runs_per_provider: int = 1  # batch runs of a provider live at once (the sensor's limit)
    # One batch run per provider stays up (until max_seconds, then the next) while the provider
    # has accounts synced before: a click is taken within a poll, not after a run's start-up.
    standby: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BatchSettings:
        made = cls(
            size=_int_env("MONOLYTH_SYNC_BATCH_SIZE", cls.size, environ),
            linger_seconds=_float_env("MONOLYTH_SYNC_BATCH_LINGER_SECONDS", cls.linger_seconds, environ),
            max_seconds=_float_env("MONOLYTH_SYNC_BATCH_MAX_SECONDS", cls.max_seconds, environ),
            runs_per_provider=_int_env("MONOLYTH_SYNC_BATCH_RUNS", cls.runs_per_provider, environ),
            standby=_bool_env("MONOLYTH_SYNC_BATCH_STANDBY", cls.standby, environ),
        )
        check_number("MONOLYTH_SYNC_BATCH_SIZE", made.size, minimum=0, maximum=1000)
        check_number("MONOLYTH_SYNC_BATCH_LINGER_SECONDS", made.linger_seconds, minimum=0, maximum=3600)
        check_number("MONOLYTH_SYNC_BATCH_MAX_SECONDS", made.max_seconds, minimum=1, maximum=86400)
        check_number("MONOLYTH_SYNC_BATCH_RUNS", made.runs_per_provider, minimum=1, maximum=100)
        return made

    @property
    def enabled(self) -> bool:
        return self.size > 0

    @property
    def idle_seconds(self) -> float:
        """How long a batch run waits for rows once its queue is empty (standby: until its end)."""
        return self.max_seconds if self.standby else self.linger_seconds
