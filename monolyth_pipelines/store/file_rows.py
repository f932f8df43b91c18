"""One ``FileRecord`` as the store writes it: validated, NUL-free, with its content hash.

The hash decides whether a re-listed item changed, so its input must never drift between
versions: a different serialisation of the same record would rewrite every stored row once and
log a false ``modified`` event for each. ``canonical_json`` therefore produces, byte for byte,
what ``json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)`` produced before
for any JSON value (what a Google answer decodes to), datetimes and UUIDs; the tests compare the
two on generated values. orjson is only its fast path. NaN and infinities are not JSON: Google
never sends them, and Postgres refused the old text for them, so nothing stored depends on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.store import file_events
from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.schema import connector_files


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0  # updated rows that had been tombstoned
    written_ids: list[str] = field(default_factory=list)

    def add(self, other: UpsertCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.restored += other.restored
        self.written_ids.extend(other.written_ids)


# orjson leaves these raw where json escapes them (it already escapes the control characters).
_NOT_ASCII = re.compile("[^\x00-\x7e]")


def _plain(container: dict[Any, Any] | list[Any]) -> bool:
    """Only dicts, lists, strings, ints, booleans and None inside: where orjson and json agree
    (but for non-ASCII, escaped below). Floats (1e-05 vs 0.00001), subclasses and anything
    json would pass to ``default`` take json's own path."""
    for item in container.values() if type(container) is dict else container:
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if (kind is dict or kind is list) and _plain(item):
            continue
        return False
    return True


def _ascii_escape(match: re.Match[str]) -> str:
    """json's ensure_ascii form of one character: \\uXXXX, a surrogate pair above U+FFFF."""
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, ASCII with \\u escapes: the text the content hash is taken over."""
    fast = None
    # Non-string keys, integers past 64 bits, lone surrogates: orjson refuses, json decides.
    with contextlib.suppress(orjson.JSONEncodeError):
        if type(value) is dict and _plain(value):
            fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    if fast is None:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    text = fast.decode()
    return text if text.isascii() and "\x7f" not in text else _NOT_ASCII.sub(_ascii_escape, text)


def content_hash(record: FileRecord, meta_text: str | None = None) -> str:
    """What decides whether a row changed: every stored field but ids and timestamps of ours."""
    # repr() quotes strings and tells None from "None", so the joined fields cannot collide.
    modified = record.modified_at.isoformat() if record.modified_at else None
    if meta_text is None:
        meta_text = canonical_json(record.meta)
    canonical = (
        f"{record.title!r}\x1f{record.mime!r}\x1f{record.size!r}\x1f{modified!r}\x1f{record.url!r}"
        f"\x1e{meta_text}"
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate(records: Sequence[FileRecord]) -> None:
    """The whole batch, before anything is written: one bad row writes nothing."""
    for index, record in enumerate(records):
        if not isinstance(record.external_id, str) or not record.external_id:
            raise InvalidRecordError("external_id", "is required and must be a non-empty string", index)
        if record.size is not None and (not isinstance(record.size, int) or record.size < 0):
            raise InvalidRecordError("size", f"must be a non-negative integer, got {record.size!r}", index)
        if record.modified_at is not None and (
            not isinstance(record.modified_at, datetime) or record.modified_at.tzinfo is None
        ):
            raise InvalidRecordError("modified_at", "must be a timezone-aware datetime", index)
        if not isinstance(record.meta, dict):
            raise InvalidRecordError("meta_json", "must be a JSON object", index)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


# Every column but the row's identity and birth: what an upsert may change.
UPDATED_ON_CONFLICT = tuple(
    c.name for c in connector_files.c if c.name not in ("id", "account_id", "external_id", "created_at")
)

# What differs from row to row; account, provider and times are the statement's constants.
ROW_FIELDS = ("external_id", "title", "mime", "size", "modified_at", "url", "meta", "content_hash")


def row(record: FileRecord) -> dict[str, Any]:
    """The record's own columns (``meta`` as a dict) and its content hash."""
    meta_text = canonical_json(record.meta)
    # Postgres refuses NUL in text and jsonb, and one such item (a mail subject with =00 in it)
    # would otherwise fail every sync of the account. Checked on the serialised form: cheap.
    if (
        "\\u0000" in meta_text
        or "\x00" in (record.title or "")
        or "\x00" in (record.mime or "")
        or "\x00" in (record.url or "")
    ):
        record = dataclasses.replace(
            record,
            title=_without_nul(record.title),
            mime=_without_nul(record.mime),
            url=_without_nul(record.url),
            meta=_without_nul(record.meta),
        )
        meta_text = canonical_json(record.meta)
    return {
        "external_id": record.external_id,
        "title": record.title,
        "mime": record.mime,
        "size": record.size,
        "modified_at": record.modified_at,
        "url": record.url,
        "meta": record.meta,
        "content_hash": content_hash(record, meta_text),
        # What the row's event says if it turns out new (most rows of a first sync): built here,
        # in the thread that prepares the page, instead of by the database on the writer's time.
        "added_changes": file_events.added_changes(record.title, record.size, record.modified_at),
    }


def full_row(
    account_id: uuid.UUID, provider: str, record_row: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """``row`` with the columns every row of a batch shares: a whole connector_files row."""
    return {
        **record_row,
        "account_id": account_id,
        "provider": provider,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "deleted_reason": None,
    }


class PreparedRecords(list[FileRecord]):
    """Records already validated, de-duplicated and turned into rows (``prepare``), so a fetch
    thread can do that work while the writer waits on the database. Still a list of records for
    everything else that reads a page."""

    rows: list[dict[str, Any]]
    rows_json: bytes  # the rows as one JSON document, as Postgres's page write sends them


def prepare(records: Sequence[FileRecord]) -> PreparedRecords:
    """``records`` checked (``validate``; one bad row fails the batch), the last of each
    external id kept, and their rows built. Pure: no I/O."""
    validate(records)
    by_id = {record.external_id: record for record in records}
    prepared = PreparedRecords(by_id.values())
    prepared.rows = [row(record) for record in prepared]
    prepared.rows_json = rows_document(prepared.rows)
    return prepared


def _iso_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def rows_document(rows: Sequence[dict[str, Any]]) -> bytes:
    """The rows as one JSON document; datetimes as RFC 3339 with their offset, which timestamptz
    reads exactly. An integer past 64 bits (which orjson refuses) goes through json, exact."""
    try:
        return orjson.dumps(list(rows))
    except orjson.JSONEncodeError:
        return json.dumps(list(rows), default=_iso_default, ensure_ascii=False).encode()
