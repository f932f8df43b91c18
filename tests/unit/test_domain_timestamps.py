"""RFC 3339 / epoch parsing shared by Drive and Gmail normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monolyth_pipelines.domain.timestamps import format_utc_z, from_epoch_millis, parse_rfc3339


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-27T12:34:56Z", datetime(2025, 11, 27, 12, 34, 56, tzinfo=UTC)),
        ("2025-11-27T12:34:56.789Z", datetime(2025, 11, 27, 12, 34, 56, 789000, tzinfo=UTC)),
        ("2025-11-27T12:34:56.123456789Z", datetime(2025, 11, 27, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2025-11-27T14:34:56+02:00", datetime(2025, 11, 27, 12, 34, 56, tzinfo=UTC)),
        ("2025-11-27T12:34:56", datetime(2025, 11, 27, 12, 34, 56, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339_returns_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", [None, 0, "", "2025-11-27", "2025-W48-4", "27/11/2025 12:00", "2025-02-30T00:00:00Z"]
)
def test_parse_rfc3339_rejects_non_timestamps(text: object) -> None:
    assert parse_rfc3339(text) is None


def test_format_utc_z_converts_offsets() -> None:
    moment = datetime(2025, 11, 27, 11, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_utc_z(moment) == "2025-11-27T10:00:00Z"


def test_epoch_millis() -> None:
    assert from_epoch_millis("1764237600000") == datetime(2025, 11, 27, 10, 0, tzinfo=UTC)
    assert from_epoch_millis("abc") is None
    assert from_epoch_millis(None) is None
    assert from_epoch_millis(str(10**30)) is None
