"""The change probe before scheduled runs, and push notification channels."""

from __future__ import annotations

from dataclasses import dataclass

from monolyth_pipelines.settings.env import (
    _env,
    _float_env,
    _int_env,
)
from monolyth_pipelines.settings_checks import check_url

# Google's OAuth signing certificates ({kid: PEM}), which Pub/Sub's OIDC push tokens verify against.
GOOGLE_OAUTH2_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


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
    # A shared secret the Pub/Sub push endpoint URL carries (?token=); optional once OIDC is on.
    webhook_secret: str | None = None
    # The push subscription's service account: its Google-signed OIDC token authenticates a push.
    gmail_push_service_account: str | None = None
    gmail_push_certs_url: str = GOOGLE_OAUTH2_CERTS_URL
    gmail_pubsub_topic: str | None = None
    # An account with a live channel is still probed this often (the safety net).
    push_poll_hours: float = 6.0
    channel_hours: float = 24.0
    renew_before_minutes: float = 60.0
    webhook_max_body_bytes: int = 65_536

    @property
    def push_enabled(self) -> bool:
        return self.webhook_url is not None

    @property
    def gmail_push_authenticated(self) -> bool:
        """Gmail pushes can be told from forgeries: an OIDC service account or a shared secret."""
        return bool(self.gmail_push_service_account or self.webhook_secret)

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
            gmail_push_service_account=_env("MONOLYTH_GMAIL_PUSH_SERVICE_ACCOUNT", environ),
            gmail_push_certs_url=check_url(
                "MONOLYTH_GMAIL_PUSH_CERTS_URL",
                _env("MONOLYTH_GMAIL_PUSH_CERTS_URL", environ) or GOOGLE_OAUTH2_CERTS_URL,
            ),
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
