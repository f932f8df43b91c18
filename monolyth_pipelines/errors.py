"""Provider-independent sync errors: a stable code, whether retrying can help, a safe message.

Codes (``ErrorCode``; the values are stable, they end up in ``connector_sync_failed.error_code``
and in ``connector_jobs.last_error``):

==========================  =========  =================================================================
code                        retryable  meaning / what fixes it
==========================  =========  =================================================================
auth_revoked                no         refresh token revoked or expired, or 401 after a refresh: reconnect
oauth_client_invalid        no         Google rejected our OAuth client id/secret: operator config
insufficient_permissions    no         missing scope or no access to the item: reconnect / ask for access
domain_policy               no         a Workspace admin blocks this app for the user's domain
api_disabled                no         the API is not enabled in the Cloud project: operator config
quota_exhausted             no         daily quota used up: try again tomorrow
rate_limited                yes        per-user/per-project rate limit (429, 403 *RateLimitExceeded)
export_too_large            no         files.export refused a file over Google's 10 MB export cap
not_found                   no         the item does not exist or is not visible to the user
label_not_found             no         the configured Gmail label is missing (set by callers)
cursor_invalid              no         a page token / history id is stale: restart with a full sync
bad_request                 no         Google rejected the request as malformed (a bug on our side)
google_unavailable          yes        5xx, 408, token-endpoint hiccups and network errors
internal                    no         anything else (a bug): see the chained exception
==========================  =========  =================================================================

Every message goes through ``redact`` so tokens and client secrets cannot reach logs, job rows
or activity events. The original exception is kept as ``__cause__`` for debugging; its text is
*not* redacted, so only ``SyncError``'s own message belongs in user-visible places.
"""

from __future__ import annotations

import re
from enum import StrEnum

MAX_MESSAGE_CHARS = 500
REDACTED = "[REDACTED]"


class ErrorCode(StrEnum):
    AUTH_REVOKED = "auth_revoked"
    OAUTH_CLIENT_INVALID = "oauth_client_invalid"
    INSUFFICIENT_PERMISSIONS = "insufficient_permissions"
    DOMAIN_POLICY = "domain_policy"
    API_DISABLED = "api_disabled"
    QUOTA_EXHAUSTED = "quota_exhausted"
    RATE_LIMITED = "rate_limited"
    EXPORT_TOO_LARGE = "export_too_large"
    NOT_FOUND = "not_found"
    LABEL_NOT_FOUND = "label_not_found"
    CURSOR_INVALID = "cursor_invalid"
    BAD_REQUEST = "bad_request"
    GOOGLE_UNAVAILABLE = "google_unavailable"
    INTERNAL = "internal"


# --- redaction -------------------------------------------------------------------------------

_SECRET_KEYS = (
    r"access_token|refresh_token|id_token|client_secret|token|code|password|api_key|key|"
    r"assertion|authorization"
)
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JSON / Python-repr pairs: "access_token": "…" (also inside escaped JSON: \"token\": \"…\").
    (
        re.compile(
            rf"""(?P<k>\\?["'](?:{_SECRET_KEYS})\\?["']\s*:\s*)(?P<q>\\?["'])(?:(?!(?P=q)).)*(?P=q)""",
            re.IGNORECASE,
        ),
        rf"\g<k>\g<q>{REDACTED}\g<q>",
    ),
    # Query strings and form bodies: access_token=…&, client_secret=…, key=AIza…
    (
        re.compile(rf"(?P<k>(?<![A-Za-z0-9_])(?:{_SECRET_KEYS})=)[^&\s\"',;)}}\]]+", re.IGNORECASE),
        rf"\g<k>{REDACTED}",
    ),
    # Authorization headers, whatever the scheme, and bearer tokens quoted anywhere else.
    (re.compile(r"(Authorization\s*:\s*)[^\r\n,;}]+", re.IGNORECASE), rf"\1{REDACTED}"),
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), f"Bearer {REDACTED}"),
    # Bare Google credentials wherever they appear: access tokens, refresh tokens, client
    # secrets, API keys, JWTs (id tokens, signed assertions).
    (re.compile(r"ya29\.[A-Za-z0-9._-]+"), REDACTED),
    (re.compile(r"\b1//[A-Za-z0-9._-]{10,}"), REDACTED),
    (re.compile(r"GOCSPX-[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"AIza[0-9A-Za-z_-]{20,}"), REDACTED),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with OAuth tokens, client secrets, API keys and auth headers replaced."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def safe_message(text: str) -> str:
    """Redacted, single-line and bounded, so it fits a log line and a ``last_error`` column."""
    flat = " ".join(redact(text).split())
    if len(flat) > MAX_MESSAGE_CHARS:
        flat = flat[: MAX_MESSAGE_CHARS - 1] + "…"
    return redact(flat)


class SyncError(Exception):
    """A classified failure; ``str()`` is the redacted message."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = ErrorCode(code)
        self.message = safe_message(message)
        self.retryable = retryable
        self.status = status  # HTTP status when the error came from Google, for logs
        self.reason = reason  # Google's machine reason (e.g. "userRateLimitExceeded")
        self.retry_after = retry_after  # seconds, from a Retry-After header
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"SyncError(code={self.code.value!r}, retryable={self.retryable}, message={self.message!r})"
