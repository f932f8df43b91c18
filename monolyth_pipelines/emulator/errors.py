"""Google's JSON error shape, raised by any handler and rendered once by the server.

Every API error leaves the emulator as
``{"error": {"code", "message", "errors": [{"message", "domain", "reason", ...}], "status"}}``,
because google-api-python-client reads ``error.errors[0].reason`` to decide whether a 403 is
retryable, and connectors map ``reason`` to their own error codes.
"""

from __future__ import annotations

import json
from typing import Any

# google.rpc.Code names that Google puts in ``error.status`` for each HTTP code.
_STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# What an injected or generic error of a given code looks like when nobody chose a reason.
_DEFAULTS: dict[int, tuple[str, str, str]] = {
    # code: (reason, message, domain)
    400: ("badRequest", "Bad Request", "global"),
    401: ("authError", "Invalid Credentials", "global"),
    403: ("forbidden", "Forbidden", "global"),
    404: ("notFound", "Requested entity was not found.", "global"),
    429: ("rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
    500: ("backendError", "Backend Error", "global"),
    502: ("backendError", "Bad Gateway", "global"),
    503: ("backendError", "The service is currently unavailable.", "global"),
    504: ("backendError", "Deadline exceeded", "global"),
}

_REASON_DEFAULTS: dict[str, tuple[str, str]] = {
    # reason: (message, domain)
    "userRateLimitExceeded": ("User Rate Limit Exceeded", "usageLimits"),
    "rateLimitExceeded": ("Rate Limit Exceeded", "usageLimits"),
    "dailyLimitExceeded": ("Daily Limit Exceeded", "usageLimits"),
    "insufficientPermissions": ("Insufficient Permission", "global"),
    "domainPolicy": ("The domain administrators have disabled this app.", "global"),
    "backendError": ("Backend Error", "global"),
}


class ApiError(Exception):
    """An error answer of the emulated API, in Google's shape."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        reason: str | None = None,
        *,
        domain: str | None = None,
        location: str | None = None,
        location_type: str | None = None,
        top_message: str | None = None,
    ) -> None:
        default_reason, default_message, default_domain = _DEFAULTS.get(code, ("unknown", "Error", "global"))
        reason = reason or default_reason
        reason_message, reason_domain = _REASON_DEFAULTS.get(reason, (default_message, default_domain))
        self.code = code
        self.reason = reason
        self.message = message or reason_message
        self.domain = domain or reason_domain
        self.location = location
        self.location_type = location_type
        # Google sometimes words the top-level message differently from errors[0].message
        # (401 and insufficient scopes do); keep both when a caller knows the difference.
        self.top_message = top_message or self.message
        super().__init__(f"{code} {reason}: {self.message}")

    @property
    def status(self) -> str:
        return _STATUS_NAMES.get(self.code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"message": self.message, "domain": self.domain, "reason": self.reason}
        if self.location is not None:
            detail["location"] = self.location
            detail["locationType"] = self.location_type or "parameter"
        return {
            "error": {
                "code": self.code,
                "message": self.top_message,
                "errors": [detail],
                "status": self.status,
            }
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()


def invalid_parameter(name: str, message: str | None = None, *, reason: str = "invalid") -> ApiError:
    """400 for a query parameter Google would reject ("Invalid Value" with its location)."""
    return ApiError(400, message or "Invalid Value", reason, location=name, location_type="parameter")


def required_parameter(name: str) -> ApiError:
    return ApiError(400, "Required parameter: " + name, "required", location=name, location_type="parameter")


def not_found(message: str = "Requested entity was not found.", *, location: str | None = None) -> ApiError:
    return ApiError(404, message, "notFound", location=location)


def unauthenticated() -> ApiError:
    return ApiError(
        401,
        "Invalid Credentials",
        "authError",
        location="Authorization",
        location_type="header",
        top_message=(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. "
            "See https://developers.google.com/identity/sign-in/web/devconsole-project."
        ),
    )


def insufficient_permissions(message: str = "Insufficient Permission") -> ApiError:
    return ApiError(
        403,
        message,
        "insufficientPermissions",
        top_message="Request had insufficient authentication scopes.",
    )


def from_status(code: int, reason: str | None = None) -> ApiError:
    """A generic error of ``code``, as fault injection answers it."""
    if code == 403 and reason is None:
        reason = "userRateLimitExceeded"
    return ApiError(code, reason=reason)
