"""Timestamp parsing and formatting shared by the provider normalisers.

Everything here returns timezone-aware UTC datetimes or ``None``: a provider sending a bad
timestamp must cost us one field, never a whole sync run.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

# RFC 3339 date-time (the profile Drive uses). Validated up front because
# ``datetime.fromisoformat`` also accepts ISO 8601 variants (week dates, date-only, basic
# format) that a Drive timestamp never legitimately is, and we would rather drop those than
# store a misread instant.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?$")


def parse_rfc3339(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp into an aware UTC datetime, or ``None`` if unusable.

    Fractional seconds of any length are accepted (Drive sends milliseconds; sub-microsecond
    digits are truncated). A missing offset is read as UTC, which is what Drive means by it.
    """
    return _parse_text(value) if isinstance(value, str) else None


# One entry: a listed Drive file's modifiedTime is checked (domain/payloads.py), then read into
# its record (domain/drive.py), the same text twice in a row, for every file of every page.
@functools.lru_cache(maxsize=1)
def _parse_text(value: str) -> datetime | None:
    text = value.strip()
    if not _RFC3339.match(text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_utc_z(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC; a naive datetime is taken to already be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_epoch_millis(value: object) -> datetime | None:
    """Gmail's ``internalDate`` (epoch milliseconds, sent as a string) as an aware UTC datetime."""
    if isinstance(value, bool):
        return None
    try:
        millis = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
