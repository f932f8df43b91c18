"""Pure range checks for settings: each failure names the variable and what is wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A setting is unusable. Raised before a job opens, so a typo never reaches the rows.

    ``variable`` names the setting as the operator wrote it (an environment variable or a run
    config field); ``problem`` says what is wrong with its value.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


# type/subtype as RFC 6838 allows it; anything else (a stray comma, "pdf") is a typo.
_MIME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")


def check_mime_list(variable: str, values: tuple[str, ...], *, allow_empty: bool = False) -> None:
    if not values and not allow_empty:
        raise ConfigError(variable, "is empty; at least one MIME type (e.g. application/pdf) is required")
    bad = [v for v in values if not _MIME_RE.match(v)]
    if bad:
        raise ConfigError(variable, f"{bad[0]!r} is not a MIME type (type/subtype)")


def check_number(
    variable: str,
    value: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(variable, f"must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        word = "greater than" if exclusive_minimum else "at least"
        raise ConfigError(variable, f"must be {word} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(variable, f"must be at most {maximum:g}, got {value!r}")


def check_url(variable: str, value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(variable, f"must be an http(s) URL, got {value!r}")
    return value


def field_names(
    limits: object, env_names: Mapping[str, str], overridden: Mapping[str, str]
) -> dict[str, str]:
    """How to name each field in an error: the run config path when a run set it, else its variable."""
    return {f.name: overridden.get(f.name) or env_names.get(f.name, f.name) for f in fields(limits)}  # type: ignore[arg-type]


DRIVE_ENV_NAMES = {
    "max_files_per_run": "MAX_FILES_PER_RUN",
    "max_file_size_mb": "MAX_FILE_SIZE_MB",
    "supported_mime_types": "SUPPORTED_MIME_TYPES",
    "include_shared_drives": "DRIVE_INCLUDE_SHARED_DRIVES",
    "import_to_vault": "DRIVE_PERSISTENCE",
    "page_size": "page_size",
    "mass_tombstone_share": "MONOLYTH_MASS_TOMBSTONE_SHARE",
    "allow_mass_tombstone": "allow_mass_tombstone",
}


GMAIL_ENV_NAMES = {
    "max_threads": "GMAIL_MAX_THREADS",
    "label": "GMAIL_LABEL",
    "attachment_mime_types": "GMAIL_ATTACHMENT_MIME_TYPES",
    "attachment_filename_pattern": "GMAIL_ATTACHMENT_FILENAME_PATTERN",
    "attachment_max_size_mb": "GMAIL_ATTACHMENT_MAX_SIZE_MB",
    "quota_units_per_second": "GMAIL_QUOTA_UNITS_PER_SECOND",
    "method_costs": "GMAIL_QUOTA_COSTS",
    "batch_size": "GMAIL_BATCH_SIZE",
    "attachment_metadata": "GMAIL_ATTACHMENT_METADATA",
    "mass_tombstone_share": "MONOLYTH_MASS_TOMBSTONE_SHARE",
    "allow_mass_tombstone": "allow_mass_tombstone",
}
GMAIL_METHODS = (
    "getProfile",
    "labels.list",
    "threads.list",
    "threads.get",
    "messages.get",
    "history.list",
    "attachments.get",
)


def check_method_costs(variable: str, costs: Mapping[str, int], units_per_second: float) -> None:
    for method, units in costs.items():
        if method not in GMAIL_METHODS:
            raise ConfigError(variable, f"unknown method {method!r} (known: {', '.join(GMAIL_METHODS)})")
        check_number(f"{variable} ({method})", units, minimum=1)
        if units > units_per_second:
            raise ConfigError(
                variable,
                f"{method} costs {units} units, more than the {units_per_second:g} "
                "units per second the pacer may spend: no call could ever be made",
            )


def check_drive_limits(limits: Any, name: Mapping[str, str]) -> None:
    """Ranges of ``settings.DriveLimits``; ``name`` says how to call each field in an error."""
    check_number(name["max_files_per_run"], limits.max_files_per_run, minimum=1)
    if not isinstance(limits.max_files_per_run, int):
        raise ConfigError(name["max_files_per_run"], f"must be an integer, got {limits.max_files_per_run!r}")
    check_number(name["max_file_size_mb"], limits.max_file_size_mb, minimum=0, exclusive_minimum=True)
    check_mime_list(name["supported_mime_types"], limits.supported_mime_types)
    check_number(name["page_size"], limits.page_size, minimum=1, maximum=1000)
    check_number(name["mass_tombstone_share"], limits.mass_tombstone_share, minimum=0, maximum=1)


def check_gmail_limits(limits: Any, name: Mapping[str, str]) -> None:
    """Ranges of ``settings.GmailLimits``."""
    check_number(name["max_threads"], limits.max_threads, minimum=1)
    if not limits.label or not limits.label.strip():
        raise ConfigError(name["label"], "is empty; name the Gmail label to sync")
    check_mime_list(name["attachment_mime_types"], limits.attachment_mime_types, allow_empty=True)
    if limits.attachment_filename_pattern is not None:
        try:
            re.compile(limits.attachment_filename_pattern)
        except re.error as exc:
            raise ConfigError(
                name["attachment_filename_pattern"], f"is not a regular expression: {exc}"
            ) from None
    check_number(
        name["attachment_max_size_mb"], limits.attachment_max_size_mb, minimum=0, exclusive_minimum=True
    )
    check_number(
        name["quota_units_per_second"], limits.quota_units_per_second, minimum=0, exclusive_minimum=True
    )
    check_method_costs(name["method_costs"], limits.method_costs, limits.quota_units_per_second)
    check_number(name["batch_size"], limits.batch_size, minimum=1, maximum=100)
    check_number(name["mass_tombstone_share"], limits.mass_tombstone_share, minimum=0, maximum=1)


def check_endpoint_override(
    variable: str, asked: str | None, deployed: str | None, allowlist: Sequence[str]
) -> None:
    """A run may repeat the deployment's endpoint or pick an allow-listed one, nothing else."""
    asked = (asked or "").rstrip("/") or None
    if asked is None or asked == (deployed or "").rstrip("/") or asked in allowlist:
        return
    raise ConfigError(
        variable,
        "Google endpoints come from the deployment (MONOLYTH_GOOGLE_API_ENDPOINT, "
        "MONOLYTH_GOOGLE_TOKEN_URI), not from run config; list the URL in "
        "MONOLYTH_GOOGLE_ENDPOINT_ALLOWLIST to allow it",
    )


def parse_number(variable: str, raw: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(raw)
    except ValueError:
        word = "an integer" if kind is int else "a number"
        raise ConfigError(variable, f"must be {word}, got {raw!r}") from None


def parse_bool(variable: str, raw: str) -> bool:
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ConfigError(variable, f"must be true or false, got {raw!r}")
