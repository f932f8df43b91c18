"""How Google's failures become ``SyncError``s: HTTP status and reason, OAuth refresh errors and
network errors, each mapped to a stable ``ErrorCode`` (see ``monolyth_pipelines.errors``).

The codes, redaction and ``SyncError`` itself are provider-independent and live in
``monolyth_pipelines.errors``; they are re-exported here for the import paths that predate it.
"""

from __future__ import annotations

import errno
import json
import re
import ssl
from collections.abc import Mapping
from typing import Any

import httplib2
from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError

from monolyth_pipelines.errors import (  # noqa: F401  (re-exported for old import paths)
    MAX_MESSAGE_CHARS,
    REDACTED,
    ErrorCode,
    SyncError,
    redact,
    safe_message,
)

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
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        text = f"Google answered with a body that is not JSON: {type(exc).__name__}"
        return SyncError(ErrorCode.BAD_RESPONSE, text, retryable=True)
    # The exception's text may quote a file title, a subject, content or SQL parameters: only its
    # type and where it was raised leave this process (last_error, events, Dagster's log). Database
    # errors are the run's to classify (sync/refusals.classify_run_error), not Google's.
    return SyncError(ErrorCode.INTERNAL, f"Unexpected error: {type(exc).__name__}{_origin(exc)}")


def _origin(exc: BaseException) -> str:
    """`` at module.py:123`` for the innermost frame of the traceback, or nothing."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
