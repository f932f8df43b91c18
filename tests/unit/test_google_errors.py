"""Error classification from real HttpError / RefreshError objects, and secret redaction."""

from __future__ import annotations

import errno
import json

import httplib2
import pytest
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from monolyth_pipelines.google.errors import (
    ErrorCode,
    SyncError,
    classify_exception,
    classify_http_error,
    redact,
)

DRIVE_URI = "https://www.googleapis.com/drive/v3/files?alt=json"


def http_error(
    status: int,
    reason: str | None = None,
    message: str = "error",
    *,
    location: str | None = None,
    uri: str = DRIVE_URI,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> HttpError:
    if body is None:
        item: dict[str, str] = {"domain": "usageLimits" if reason else "global", "message": message}
        if reason:
            item["reason"] = reason
        if location:
            item.update(locationType="parameter", location=location)
        body = json.dumps({"error": {"code": status, "message": message, "errors": [item]}}).encode()
    resp = httplib2.Response({"status": status, **(headers or {})})
    return HttpError(resp, body, uri=uri)


@pytest.mark.parametrize(
    ("status", "reason", "code", "retryable"),
    [
        (429, "rateLimitExceeded", ErrorCode.RATE_LIMITED, True),
        (403, "userRateLimitExceeded", ErrorCode.RATE_LIMITED, True),
        (403, "rateLimitExceeded", ErrorCode.RATE_LIMITED, True),
        (500, "backendError", ErrorCode.GOOGLE_UNAVAILABLE, True),
        (502, None, ErrorCode.GOOGLE_UNAVAILABLE, True),
        (503, "backendError", ErrorCode.GOOGLE_UNAVAILABLE, True),
        (504, None, ErrorCode.GOOGLE_UNAVAILABLE, True),
        (403, "insufficientPermissions", ErrorCode.INSUFFICIENT_PERMISSIONS, False),
        (403, "domainPolicy", ErrorCode.DOMAIN_POLICY, False),
        (403, "dailyLimitExceeded", ErrorCode.QUOTA_EXHAUSTED, False),
        (403, "exportSizeLimitExceeded", ErrorCode.EXPORT_TOO_LARGE, False),
        (403, "accessNotConfigured", ErrorCode.API_DISABLED, False),
        (403, None, ErrorCode.INSUFFICIENT_PERMISSIONS, False),
        (401, "authError", ErrorCode.AUTH_REVOKED, False),
        (404, "notFound", ErrorCode.NOT_FOUND, False),
        (400, "invalid", ErrorCode.BAD_REQUEST, False),
    ],
)
def test_http_errors_are_classified_by_status_and_reason(
    status: int, reason: str | None, code: ErrorCode, retryable: bool
) -> None:
    error = classify_http_error(http_error(status, reason))
    assert (error.code, error.retryable, error.status, error.reason) == (code, retryable, status, reason)


def test_classification_agrees_with_the_client_librarys_own_retry_rule() -> None:
    from googleapiclient.http import _should_retry_response

    for status, reason in [
        (403, "userRateLimitExceeded"),
        (403, "insufficientPermissions"),
        (429, None),
        (503, None),
        (404, "notFound"),
        (403, "dailyLimitExceeded"),
    ]:
        exc = http_error(status, reason)
        assert classify_http_error(exc).retryable == _should_retry_response(status, exc.content)


def test_new_style_error_details_reason_is_used_when_errors_list_is_missing() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 403,
                "message": "Request had insufficient authentication scopes.",
                "status": "PERMISSION_DENIED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    }
                ],
            }
        }
    ).encode()
    error = classify_http_error(http_error(403, body=body))
    assert error.code is ErrorCode.INSUFFICIENT_PERMISSIONS
    assert "insufficient authentication scopes" in error.message


def test_stale_page_token_is_cursor_invalid() -> None:
    exc = http_error(400, "invalid", "Invalid Value", location="pageToken")
    assert classify_http_error(exc).code is ErrorCode.CURSOR_INVALID


def test_gmail_history_404_is_cursor_invalid_but_other_404s_are_not_found() -> None:
    history = http_error(
        404,
        "notFound",
        "Requested entity was not found.",
        uri="https://gmail.googleapis.com/gmail/v1/users/me/history?startHistoryId=1&alt=json",
    )
    assert classify_http_error(history).code is ErrorCode.CURSOR_INVALID
    thread = http_error(
        404, "notFound", uri="https://gmail.googleapis.com/gmail/v1/users/me/threads/abc?alt=json"
    )
    assert classify_http_error(thread).code is ErrorCode.NOT_FOUND


def test_caller_can_name_what_a_404_means() -> None:
    exc = http_error(404, "notFound", uri="https://gmail.googleapis.com/gmail/v1/users/me/labels/Label_9")
    assert classify_http_error(exc, not_found=ErrorCode.LABEL_NOT_FOUND).code is ErrorCode.LABEL_NOT_FOUND


def test_retry_after_header_is_captured() -> None:
    exc = http_error(429, "rateLimitExceeded", headers={"retry-after": "7"})
    assert classify_http_error(exc).retry_after == 7.0


def test_non_json_error_body_still_classifies() -> None:
    exc = http_error(502, body=b"<html>Bad Gateway</html>")
    error = classify_http_error(exc)
    assert error.code is ErrorCode.GOOGLE_UNAVAILABLE and error.retryable


def test_message_names_status_reason_and_googles_text_but_not_the_uri() -> None:
    exc = http_error(
        403,
        "insufficientPermissions",
        "Insufficient Permission",
        uri="https://www.googleapis.com/drive/v3/files?key=AIzaSyA-1234567890abcdefghijklmnop&alt=json",
    )
    error = classify_http_error(exc)
    assert "403" in error.message and "insufficientPermissions" in error.message
    assert "Insufficient Permission" in error.message
    assert "AIza" not in error.message and "AIza" not in str(error)


def test_error_message_is_redacted_even_when_google_echoes_a_token() -> None:
    exc = http_error(400, "invalid", "Invalid token ya29.a0AfH6SMBx-secret_token.value for Bearer ya29.zzz")
    error = classify_http_error(exc)
    assert "ya29" not in str(error)
    assert "secret_token" not in error.message


def test_revoked_refresh_token_is_auth_revoked_and_not_retryable() -> None:
    exc = RefreshError(
        "invalid_grant: Token has been expired or revoked.",
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        retryable=False,
    )
    error = classify_exception(exc)
    assert error.code is ErrorCode.AUTH_REVOKED
    assert error.retryable is False
    assert "expired or revoked" in error.message


def test_retryable_refresh_error_is_retryable() -> None:
    exc = RefreshError("server_error: backend unavailable", {"error": "server_error"}, retryable=True)
    error = classify_exception(exc)
    assert error.code is ErrorCode.GOOGLE_UNAVAILABLE and error.retryable


def test_bad_client_credentials_point_at_the_operator_not_the_user() -> None:
    exc = RefreshError("invalid_client: The OAuth client was not found.", {"error": "invalid_client"})
    assert classify_exception(exc).code is ErrorCode.OAUTH_CLIENT_INVALID


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError("timed out"),
        OSError(errno.ETIMEDOUT, "Operation timed out"),
        httplib2.ServerNotFoundError("Unable to find the server at gmail.googleapis.com"),
        TransportError("connection aborted"),
    ],
)
def test_transport_errors_are_retryable_google_unavailable(exc: Exception) -> None:
    error = classify_exception(exc)
    assert error.code is ErrorCode.GOOGLE_UNAVAILABLE
    assert error.retryable


def test_other_errors_are_internal_and_not_retried() -> None:
    assert classify_exception(OSError(errno.ENOENT, "No such file")).code is ErrorCode.INTERNAL
    error = classify_exception(KeyError("nextPageToken"))
    assert error.code is ErrorCode.INTERNAL and not error.retryable


def test_sync_error_passes_through_unchanged() -> None:
    original = SyncError(ErrorCode.LABEL_NOT_FOUND, "label 'Contracts' not found")
    assert classify_exception(original) is original


# --- redaction -------------------------------------------------------------------------------

ACCESS = "ya29.a0AfB_byC-1234567890abcdefGHIJ_klmnop"
REFRESH = "1//0gLkP9xYzAbCdEfGhIjKlMnOpQrStUvWxYz-abc"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {ACCESS}",
        f"bearer {ACCESS}",
        f'{{"access_token": "{ACCESS}", "expires_in": 3599}}',
        f"{{'refresh_token': '{REFRESH}', 'client_id': 'abc.apps.googleusercontent.com'}}",
        f'"{{\\"token\\": \\"{ACCESS}\\"}}"',
        f"https://www.googleapis.com/drive/v3/files?access_token={ACCESS}&alt=json",
        f"grant_type=refresh_token&refresh_token={REFRESH}&client_secret=GOCSPX-AbCdEf123456",
        f"token {ACCESS} expired",
        f"stored refresh token {REFRESH}",
    ],
)
def test_redact_removes_tokens(text: str) -> None:
    cleaned = redact(text)
    assert ACCESS not in cleaned
    assert REFRESH not in cleaned
    assert "GOCSPX-AbCdEf123456" not in cleaned
    assert "[REDACTED]" in cleaned


def test_redact_removes_client_secret_in_any_form() -> None:
    for text in (
        '{"client_secret": "s3cr3t-value"}',
        "client_secret=s3cr3t-value&x=1",
        "CLIENT_SECRET=s3cr3t-value",
    ):
        assert "s3cr3t-value" not in redact(text)


def test_redact_removes_bare_credentials_without_a_key_name() -> None:
    text = (
        "secret GOCSPX-AbCdEf123456_xyz leaked; id token eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl; "
        "AIzaSyA-1234567890abcdefghijklmnop"
    )
    cleaned = redact(text)
    for secret in ("GOCSPX-AbCdEf123456_xyz", "eyJzdWIiOiIx", "AIzaSyA-1234567890"):
        assert secret not in cleaned


def test_redact_keeps_harmless_text() -> None:
    text = 'HTTP 404 (notFound): File not found: 1AbC. nextPageToken="~!!~AI9FV7Q" "code": 404'
    assert redact(text) == text


def test_sync_error_redacts_and_bounds_its_message() -> None:
    error = SyncError(ErrorCode.INTERNAL, f"boom Bearer {ACCESS} " + "x" * 2000)
    assert ACCESS not in str(error)
    assert len(error.message) <= 500
    assert ACCESS not in repr(error)


def test_unknown_code_is_rejected() -> None:
    with pytest.raises(ValueError):
        SyncError("made_up", "x")
