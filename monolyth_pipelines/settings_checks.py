"""Pure range checks for settings: each failure names the variable and what is wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields


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
