"""Reading a Google page without trusting its shape: a missing list or token fails the run once,
as ``bad_response`` naming the field; an item without an id is counted and skipped.

A page read wrong costs data: ``files: null`` read as an empty page would end a sweep early and
tombstone every row the reconcile did not see; a missing token stored as ``"None"`` would be a
cursor Google rejects forever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from monolyth_pipelines.domain import payloads
from monolyth_pipelines.google.errors import ErrorCode, SyncError

# One name for an item without a usable id, whichever check finds it (domain/payloads.py).
MISSING_ID = payloads.MALFORMED_ITEM


def bad_response(method: str, problem: str) -> SyncError:
    return SyncError(ErrorCode.BAD_RESPONSE, f"{method}: {problem}")


def page_list(resp: Any, key: str, method: str, *, required: bool = True) -> list[Any]:
    """``resp[key]`` as a list; absent is an empty list only when not ``required``."""
    if not isinstance(resp, Mapping):
        raise bad_response(method, f"the answer is {type(resp).__name__}, not a JSON object")
    if key not in resp:
        if required:
            raise bad_response(method, f"'{key}' is missing")
        return []
    value = resp[key]
    if not isinstance(value, list):
        shown = "null" if value is None else type(value).__name__
        raise bad_response(method, f"'{key}' is {shown}, not a list")
    return value


def required_token(resp: Mapping[str, Any], key: str, method: str) -> str:
    """A token the run will store: a non-empty string (or number, as Gmail's historyId may be)."""
    value = resp.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() in ("", "None"):
        raise bad_response(method, f"'{key}' is missing or empty")
    return str(value)


def with_ids(
    items: list[Any], key: str, skip: Callable[[str, str], None], where: str
) -> list[Mapping[str, Any]]:
    """The items that carry ``key``; each one without it is counted as skipped (``malformed_item``)."""
    kept = []
    for index, item in enumerate(items):
        if isinstance(item, Mapping) and item.get(key) not in (None, ""):
            kept.append(item)
        else:
            skip(MISSING_ID, f"{where}#{index}")
    return kept


def change_items(items: list[Any], skip: Callable[[str, str], None], where: str) -> list[Mapping[str, Any]]:
    """Drive changes that name what changed (a file, or a shared drive); the rest are counted."""
    kept = []
    for index, change in enumerate(items):
        file = change.get("file") if isinstance(change, Mapping) else None
        if isinstance(change, Mapping) and (
            change.get("fileId") or change.get("driveId") or (isinstance(file, Mapping) and file.get("id"))
        ):
            kept.append(change)
        else:
            skip(MISSING_ID, f"{where}#{index}")
    return kept
