"""Time conversions shared by the Drive and Gmail models (epoch milliseconds everywhere inside)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def rfc3339(ms: int) -> str:
    """Epoch ms as Drive writes times: ``2024-03-01T12:34:56.789Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_rfc3339_ms(value: str) -> int:
    """RFC 3339 (or a bare date) to epoch ms; no offset means UTC, as Drive assumes. ValueError if bad."""
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def to_ms(value: datetime | str | float) -> int:
    """Epoch ms from a datetime (naive = UTC), an RFC 3339 string, or epoch seconds."""
    if isinstance(value, str):
        return parse_rfc3339_ms(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return int(float(value) * 1000)
