"""Checking what Google sent before it becomes a row: one bad item is skipped and counted under
a named reason, and never costs the page or the run.

Google's documented types are the contract. An item that breaks it in a way that would make the
row wrong (no usable id, a name that is not text, a date that does not parse) is skipped with
``malformed_item`` or ``invalid_field``; a missing optional value (``owners: null``, no size) is
not an error. Text that reaches the store is scrubbed of what no database column accepts (lone
UTF-16 surrogates from ``\\ud800`` escapes; NUL is handled by the store).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from monolyth_pipelines.domain.timestamps import from_epoch_millis, parse_rfc3339

# Skip reasons (the keys of ``counters.skipped``).
MALFORMED_ITEM = "malformed_item"  # not a JSON object, or no usable id
INVALID_FIELD = "invalid_field"  # a field of another type or format than Google documents

# Google ids are tens of characters; a unique index entry on Postgres holds about 2.7 KB.
MAX_ID_CHARS = 256
# Longer than any name, MIME type, link or header Google stores: a broken payload, not data.
MAX_FIELD_CHARS = 32_768
# The largest size a bigint column holds.
MAX_SIZE = 2**63 - 1
# How a skipped item without a usable id is listed in ``skipped_ids``.
NO_ID = "<no id>"


def usable_id(value: object) -> str | None:
    """``value`` as an id the store can key a row by, or None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    if not text or len(text) > MAX_ID_CHARS or text != scrub_text(text) or "\x00" in text:
        return None
    return text


def item_key(item: object, key: str = "id") -> str:
    """What ``skipped_ids`` lists for a skipped item."""
    found = usable_id(item.get(key)) if isinstance(item, Mapping) else None
    return found or NO_ID


def scrub_text(text: str) -> str:
    """``text`` with lone surrogates (which no UTF-8 column accepts) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def needs_scrub(value: Any) -> bool:
    """False when no text anywhere in ``value`` needs ``scrub``: one C pass over a whole page,
    so a clean page (nearly all of them) skips the walk item by item."""
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return True  # a lone surrogate, or something orjson cannot judge: scrub to be sure
    return False


def scrub(value: Any) -> Any:
    """``value`` (JSON-like) with every string scrubbed, keys included."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _bad_text(value: object) -> bool:
    """Present but not usable text: another type, or absurdly long."""
    if value is None:
        return False
    return not isinstance(value, str) or len(value) > MAX_FIELD_CHARS


def _bad_list(value: object) -> bool:
    return value is not None and not isinstance(value, list)


_DRIVE_TEXT_FIELDS = ("name", "mimeType", "webViewLink", "driveId", "md5Checksum")


def drive_file_problem(file: object) -> str | None:
    """Why a Drive File cannot be stored as it is, or None when it can."""
    # Runs on every listed file: plain loops and exact type checks before the ABC ones.
    if not (type(file) is dict or isinstance(file, Mapping)) or usable_id(file.get("id")) is None:
        return MALFORMED_ITEM
    get = file.get
    for key in _DRIVE_TEXT_FIELDS:
        if _bad_text(get(key)):
            return INVALID_FIELD
    modified = get("modifiedTime")
    if modified is not None and (_bad_text(modified) or parse_rfc3339(modified) is None):
        return INVALID_FIELD
    size = get("size")
    if size is not None and (isinstance(size, bool) or not str(size).isdigit() or int(str(size)) > MAX_SIZE):
        return INVALID_FIELD
    if _bad_list(get("owners")) or _bad_list(get("parents")):
        return INVALID_FIELD
    for key in ("trashed", "ownedByMe"):
        flag = get(key)
        if flag is not None and flag is not True and flag is not False:
            return INVALID_FIELD
    return None


def drive_change_problem(change: object) -> str | None:
    """Why a changes.list entry cannot be applied, or None. A removal needs only its id."""
    if not isinstance(change, Mapping):
        return MALFORMED_ITEM
    if change.get("changeType") == "drive":
        return None if change.get("driveId") is None or usable_id(change.get("driveId")) else INVALID_FIELD
    file = change.get("file")
    file_id = file.get("id") if isinstance(file, Mapping) else None
    if usable_id(change.get("fileId")) is None and usable_id(file_id) is None:
        return MALFORMED_ITEM
    if change.get("removed") is True or file is None:
        return None
    if not isinstance(file, Mapping):
        return INVALID_FIELD
    return drive_file_problem({**file, "id": file_id or change.get("fileId")})


def gmail_message_problem(message: object) -> str | None:
    """Why a Gmail Message cannot be stored as it is, or None when it can."""
    if not isinstance(message, Mapping) or usable_id(message.get("id")) is None:
        return MALFORMED_ITEM
    thread_id = message.get("threadId")
    if thread_id is not None and usable_id(thread_id) is None:
        return INVALID_FIELD
    labels = message.get("labelIds")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
        return INVALID_FIELD
    payload = message.get("payload")
    if payload is not None and not isinstance(payload, Mapping):
        return INVALID_FIELD
    internal = message.get("internalDate")
    if internal is not None and from_epoch_millis(internal) is None:
        return INVALID_FIELD
    headers = (payload or {}).get("headers")
    if _bad_list(headers):
        return INVALID_FIELD
    for header in headers or []:
        if isinstance(header, Mapping) and _bad_text(header.get("value")):
            return INVALID_FIELD
    return None


def split_thread(thread: object) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """A threads.get answer with only its storable messages, and (reason, id) for the others."""
    if thread is None:
        return None, []
    if not isinstance(thread, Mapping):
        return None, [(MALFORMED_ITEM, NO_ID)]
    messages = thread.get("messages")
    if messages is not None and not isinstance(messages, list):
        return None, [(INVALID_FIELD, item_key(thread))]
    good: list[Any] = []
    bad: list[tuple[str, str]] = []
    for message in messages or []:
        problem = gmail_message_problem(message)
        if problem is None:
            good.append(message)
        else:
            bad.append((problem, item_key(message)))
    return {**thread, "messages": good}, bad
