"""The content hash must not drift: a stored row whose item did not change must hash the same
under this code as under the code that stored it, or every row is rewritten with a false event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.store.file_events import added_changes, changes, iso
from monolyth_pipelines.store.file_rows import canonical_json, content_hash, prepare, row


def stdlib_json(value: Any) -> str:
    """The serialisation every stored content_hash was taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
@settings(max_examples=500, deadline=None)
def test_canonical_json_is_the_stdlib_text_for_any_json_object(meta: dict[str, Any]) -> None:
    assert canonical_json(meta) == stdlib_json(meta)


def test_the_cases_where_orjson_writes_another_text_fall_back_to_it() -> None:
    for meta in (
        {"ratio": 1e-05, "big": 1e16, "small": 0.0001, "neg": -2.5e-7, "list": [0.1, 1.0]},
        {"name": "Café ☕ 😀", "del": "\x7f", "ctl": "a\nb\x01"},
        {"lone": "\ud800x"},  # what the domain scrubs, should it ever reach the store
        {"huge": 2**70, "neg": -(2**70)},
        {"when": datetime(2024, 5, 1, 10, 11, 12, 345000, tzinfo=UTC), "id": uuid.UUID(int=7)},
        {"time in text": "at 12:30.5, then [1.5]", "n": 3},
    ):
        assert canonical_json(meta) == stdlib_json(meta), meta


def test_a_drive_row_hashes_as_the_stored_rows_did() -> None:
    record = FileRecord(
        external_id="f1",
        title="Q3 plan.pdf",
        mime="application/pdf",
        size=1234,
        modified_at=datetime(2024, 5, 1, 10, 11, 12, 345000, tzinfo=UTC),
        url="https://drive.google.com/file/d/f1/view",
        meta={
            "id": "f1",
            "name": "Café Q3 plan.pdf",
            "owners": [{"emailAddress": "a@example.com"}],
            "version": "12",
        },
    )
    # Computed by the code before orjson (commit fce13bb): rows it stored must stay unchanged.
    stored = "77864a22949e9d840d38bcf21599b3a503737571a2202d8a1b45b52c75a7364d"
    assert content_hash(record) == stored
    assert row(record)["content_hash"] == stored


@given(
    st.none() | st.text(),
    st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    st.none() | st.datetimes(timezones=st.timezones()),
)
@settings(max_examples=300, deadline=None)
def test_a_new_rows_event_changes_are_the_general_rule_with_nothing_before(
    title: str | None, size: int | None, modified_at: datetime | None
) -> None:
    new = {"title": title, "size": size, "modified_at": modified_at}
    assert added_changes(title, size, modified_at) == changes(None, new)


@given(st.datetimes(min_value=datetime(1000, 1, 2), timezones=st.timezones()))
@settings(max_examples=300, deadline=None)
def test_event_times_read_as_before(moment: datetime) -> None:
    """iso() moved from strftime to isoformat: the same text for any instant from year 1000
    (strftime does not pad earlier years; isoformat pads them as Postgres does)."""
    utc = moment.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    assert iso(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction


def test_an_integer_past_64_bits_reaches_the_page_document_exact() -> None:
    """orjson refuses such integers; the page must still be written, with the value unchanged."""
    big = -18_446_743_901_910_859_776
    record = FileRecord("m1", "Hello", "message/rfc822", 10, None, None, {"threadId": big})
    prepared = prepare([record])
    assert json.loads(prepared.rows_json)[0]["meta"]["threadId"] == big
