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
bad_config                  no         a setting or run config value is invalid (names it): fix the setting
bad_response                no         Google sent a page the connector cannot trust (names the field)
job_taken_over              no         another run took the job over: this run stopped writing
account_busy                no         another live run holds the account's job (never stored on a job row)
internal                    no         anything else (a bug): the message names the exception type only
==========================  =========  =================================================================

Every message goes through ``redact`` so tokens and client secrets cannot reach logs, job rows
or activity events. The original exception is kept as ``__cause__`` for debugging; its text is
*not* redacted, so only ``SyncError``'s own message belongs in user-visible places.
"""

from __future__ import annotations

import errno
import json
import re
import ssl
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import httplib2
from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError

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
    BAD_CONFIG = "bad_config"
    BAD_RESPONSE = "bad_response"
    ACCOUNT_BUSY = "account_busy"
    JOB_TAKEN_OVER = "job_taken_over"


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


# --- HTTP errors -----------------------------------------------------------------------------

_RATE_LIMIT_REASONS = frozenset(
    {"userratelimitexceeded", "ratelimitexceeded", "quotaexceeded", "rate_limit_exceeded"}
)
_PERMISSION_REASONS = frozenset(
    {
        "insufficientpermissions",
        "access_token_scope_insufficient",
        "insufficientfilepermissions",
        "appnotauthorizedtofile",
        "forbidden",
    }
)
_REASON_CODES: dict[str, ErrorCode] = {
    "dailylimitexceeded": ErrorCode.QUOTA_EXHAUSTED,
    "domainpolicy": ErrorCode.DOMAIN_POLICY,
    "exportsizelimitexceeded": ErrorCode.EXPORT_TOO_LARGE,
    "accessnotconfigured": ErrorCode.API_DISABLED,
    "service_disabled": ErrorCode.API_DISABLED,
}
# Parameters whose rejection means our stored cursor went stale, not that our code is wrong.
_CURSOR_PARAMETERS = frozenset({"pagetoken", "startpagetoken", "starthistoryid", "historyid"})
# Gmail history.list answers a stale startHistoryId with 404 (not 400).
_HISTORY_URI = re.compile(r"/gmail/v1/users/[^/?]+/history(?:[?#]|$)")


def _error_body(content: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    if isinstance(data, list) and data:
        data = data[0]  # batch-style bodies wrap the error in a list
    error = data.get("error") if isinstance(data, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _first_error(error: Mapping[str, Any]) -> Mapping[str, Any]:
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        return errors[0]
    return {}


def _reason(error: Mapping[str, Any]) -> str | None:
    """``errors[0].reason``, else the newer-style ``details[].reason`` (google.rpc.ErrorInfo)."""
    reason = _first_error(error).get("reason")
    if isinstance(reason, str) and reason:
        return reason
    for detail in error.get("details") or []:
        if isinstance(detail, Mapping) and isinstance(detail.get("reason"), str):
            return str(detail["reason"])
    return None


def _retry_after(resp: Any) -> float | None:
    raw = resp.get("retry-after") if hasattr(resp, "get") else None
    try:
        seconds = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None  # the HTTP-date form is rare from Google; backoff covers it
    return seconds if seconds is not None and seconds >= 0 else None


def _http_code(status: int, reason: str | None, location: str | None, uri: str | None) -> ErrorCode:
    key = (reason or "").lower()
    if status == 429 or key in _RATE_LIMIT_REASONS:
        return ErrorCode.RATE_LIMITED
    if status >= 500 or status == 408:
        return ErrorCode.GOOGLE_UNAVAILABLE
    if key in _REASON_CODES:
        return _REASON_CODES[key]
    if status == 401:
        return ErrorCode.AUTH_REVOKED
    if status == 403:
        return ErrorCode.INSUFFICIENT_PERMISSIONS
    if status == 404:
        return ErrorCode.CURSOR_INVALID if uri and _HISTORY_URI.search(uri) else ErrorCode.NOT_FOUND
    if status in (400, 410) and (location or "").lower() in _CURSOR_PARAMETERS:
        return ErrorCode.CURSOR_INVALID
    return ErrorCode.BAD_REQUEST


_RETRYABLE_CODES = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.GOOGLE_UNAVAILABLE})


def classify_http_error(exc: HttpError, *, not_found: ErrorCode | None = None) -> SyncError:
    """Classify an ``HttpError`` from its status and Google's JSON error body.

    ``not_found`` lets a caller give 404 its meaning in context (e.g. ``LABEL_NOT_FOUND`` for a
    label lookup); without it, 404 is ``not_found``, or ``cursor_invalid`` for Gmail history.list.
    """
    status = int(getattr(exc.resp, "status", 0) or 0)
    error = _error_body(exc.content or b"")
    reason = _reason(error)
    location = _first_error(error).get("location")
    code = _http_code(status, reason, location if isinstance(location, str) else None, exc.uri)
    if status == 404 and not_found is not None:
        code = not_found
    google_message = error.get("message") if isinstance(error.get("message"), str) else exc.reason
    detail = f" ({reason})" if reason else ""
    return SyncError(
        code,
        f"Google API returned HTTP {status}{detail}: {google_message or 'no message'}",
        retryable=code in _RETRYABLE_CODES,
        status=status or None,
        reason=reason,
        retry_after=_retry_after(exc.resp),
    )


# --- everything else ---------------------------------------------------------------------------

_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
    }
)
# Token-endpoint error codes that mean "this client is misconfigured", not "user must reconnect".
_CLIENT_CONFIG_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


def _oauth_error_name(exc: auth_exceptions.GoogleAuthError) -> str:
    for arg in exc.args:
        if isinstance(arg, Mapping) and isinstance(arg.get("error"), str):
            return str(arg["error"])
    first = str(exc.args[0]) if exc.args else ""
    return first.split(":", 1)[0].strip()


def _classify_refresh_error(exc: auth_exceptions.RefreshError) -> SyncError:
    name = _oauth_error_name(exc).lower()
    text = f"Refreshing the Google access token failed: {exc.args[0] if exc.args else name}"
    if getattr(exc, "retryable", False):
        return SyncError(ErrorCode.GOOGLE_UNAVAILABLE, text, retryable=True, reason=name or None)
    if name in _CLIENT_CONFIG_ERRORS:
        return SyncError(ErrorCode.OAUTH_CLIENT_INVALID, text, reason=name)
    # invalid_grant and anything unrecognised: the stored grant is unusable, the user reconnects.
    return SyncError(ErrorCode.AUTH_REVOKED, text, reason=name or None)


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(
        exc,
        # TimeoutError is also socket.timeout since Python 3.10.
        ConnectionError
        | TimeoutError
        | ssl.SSLError
        | httplib2.ServerNotFoundError
        | auth_exceptions.TransportError,
    ):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def classify_exception(exc: BaseException) -> SyncError:
    """Any exception from a Google call as a ``SyncError`` (an existing one is returned as is)."""
    if isinstance(exc, SyncError):
        return exc
    if isinstance(exc, HttpError):
        return classify_http_error(exc)
    if isinstance(exc, auth_exceptions.RefreshError):
        return _classify_refresh_error(exc)
    if _is_transport_error(exc):
        return SyncError(
            ErrorCode.GOOGLE_UNAVAILABLE,
            f"Network error talking to Google: {type(exc).__name__}: {exc}",
            retryable=True,
        )
    # The exception's text may quote a file title, a subject, content or SQL parameters: only its
    # type and where it was raised leave this process (last_error, events, Dagster's log).
    return SyncError(ErrorCode.INTERNAL, f"Unexpected error: {type(exc).__name__}{_origin(exc)}")


def _origin(exc: BaseException) -> str:
    """`` at module.py:123`` for the innermost frame of the traceback, or nothing."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
