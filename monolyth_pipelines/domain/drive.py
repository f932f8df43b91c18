"""Drive v3 metadata: what we ask Google for, how we normalise it, and what a change means.

Pure functions only; the sync layer does the calling and persisting.

Removed changes: deleted vs access lost
---------------------------------------
``changes.list`` reports ``removed: true`` (and no ``file``) both when a file was permanently
deleted and when the user lost access to it, and a follow-up ``files.get`` answers 404 in both
cases. Google never says which, so ``decide_change`` infers the reason from what we knew about
the file before:

* last seen **in the trash** -> ``DELETED``. Drive's UI only deletes permanently from the trash
  (a user emptying it, or the 30-day purge), so "trashed, then gone" is a deletion.
* **owned by the account's user** in My Drive -> ``DELETED``. An owner cannot lose access to
  their own file short of transferring ownership first.
* anything else -> ``ACCESS_LOST``. For a file someone else owns,
  unsharing is the common cause; the rarer "owner deleted it outright between two polls" looks
  identical. The sync may call ``files.get`` and pass the answer to ``decide_lookup``: if the
  file is in fact still reachable (it only left this change feed's scope) that yields the
  file's real state; a 404 confirms nothing beyond "gone" and keeps ``ACCESS_LOST``.

A trashed file is never ``removed``: it arrives with ``file.trashed = true`` -> ``TRASHED``.

``changeType: "drive"`` entries concern a shared drive itself. Removing one means the user left
it or it was deleted; Drive only deletes shared drives that are empty (or whose items an admin
deletes with it), so its files have either already gone one by one or became unreachable:
``DRIVE_REMOVED`` carries ``drive_id`` and ``ACCESS_LOST`` for the sync to apply to every row with
that ``driveId``. Other drive changes (renames, settings) do not affect file rows.

Tombstoning an id the store has never seen (a folder, an image) must be a no-op in the store:
``decide_change`` cannot know which ids are stored, so it reports out-of-scope files as tombstones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from monolyth_pipelines.domain import payloads, permissions
from monolyth_pipelines.domain.permissions import NO_SHARING, SharingContext, sharing_meta
from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.domain.timestamps import parse_rfc3339
from monolyth_pipelines.settings import DriveLimits

# Partial-response selector for one File. Never "*": Drive sends only what is named, and every
# extra field costs bandwidth on 1000-item pages. ``ownedByMe`` feeds the deleted-vs-access-lost
# inference above; ``md5Checksum``/``version`` are change detectors; ``trashed`` drives tombstones.
DRIVE_FILE_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "mimeType",
    "modifiedTime",
    "size",
    "owners(emailAddress)",
    "webViewLink",
    "trashed",
    "driveId",
    "version",
    "md5Checksum",
    "ownedByMe",
    "parents",
    # Who can see it (domain/permissions.py); Google leaves it out for shared-drive items, whose
    # permissions come from permissions.list.
    permissions.FILE_PERMISSIONS_FIELD,
)

# Keys copied into FileRecord.meta beyond the spec's shape (connectors-v1.md §2.2 step 4):
# driveId (shared-drive items), version and md5Checksum (change detection), ownedByMe (removal
# inference, see module docstring).
META_EXTRA_KEYS: tuple[str, ...] = ("driveId", "version", "md5Checksum", "ownedByMe")


def file_fields(fields: Iterable[str] = DRIVE_FILE_FIELDS) -> str:
    """The selector for ``files.get`` (a bare File)."""
    return ",".join(fields)


def files_list_fields(fields: Iterable[str] = DRIVE_FILE_FIELDS) -> str:
    """The ``fields=`` of ``files.list``; ``incompleteSearch`` tells us a corpus was cut short."""
    return f"nextPageToken,incompleteSearch,files({file_fields(fields)})"


def changes_list_fields(fields: Iterable[str] = DRIVE_FILE_FIELDS) -> str:
    """The ``fields=`` of ``changes.list``; ``newStartPageToken`` only comes on the last page."""
    return (
        "nextPageToken,newStartPageToken,"
        f"changes(changeType,removed,fileId,time,driveId,file({file_fields(fields)}))"
    )


DRIVE_FILE_GET_FIELDS = file_fields()
DRIVE_FILES_LIST_FIELDS = files_list_fields()
DRIVE_CHANGES_LIST_FIELDS = changes_list_fields()


def quote_query_value(value: str) -> str:
    """A Drive query string literal: single-quoted, with ``\\`` and ``'`` backslash-escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def build_list_query(limits: DriveLimits) -> str:
    """The ``q`` of a full listing: supported types only, nothing in the trash.

    Size cannot be filtered server-side, so ``classify_drive_file`` still runs on every item.
    """
    mime_types = list(dict.fromkeys(m for m in limits.supported_mime_types if m))
    if not mime_types:
        # An empty filter would list the whole Drive only to skip every item client-side.
        raise ValueError("DriveLimits.supported_mime_types is empty; nothing could be synced")
    clauses = " or ".join(f"mimeType = {quote_query_value(m)}" for m in mime_types)
    return f"({clauses}) and trashed = false"


class SkipReason(StrEnum):
    """Why an item was not synced; the values name the per-run "skipped by reason" counters."""

    UNSUPPORTED_TYPE = "unsupported_type"
    TOO_LARGE = "too_large"
    TRASHED = "trashed"
    # Set by the sync, not by classify_drive_file: Google refused an export (over 10 MB) or the
    # content download was forbidden.
    EXPORT_LIMIT = "export_limit"
    NO_PERMISSION = "no_permission"
    # The item breaks Google's documented shape (domain/payloads.py): counted, never stored.
    MALFORMED_ITEM = payloads.MALFORMED_ITEM
    INVALID_FIELD = payloads.INVALID_FIELD


_SKIP_TO_TOMBSTONE: dict[SkipReason, TombstoneReason] = {
    SkipReason.TRASHED: TombstoneReason.TRASHED,
    SkipReason.UNSUPPORTED_TYPE: TombstoneReason.UNSUPPORTED_TYPE,
    SkipReason.TOO_LARGE: TombstoneReason.TOO_LARGE,
}


def parse_size(value: object) -> int | None:
    """Drive's int64-as-string ``size``; absent (folders, shortcuts, some native docs) -> None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        size = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return size if size >= 0 else None


def classify_drive_file(file: Mapping[str, Any], limits: DriveLimits) -> SkipReason | None:
    """Why this file must be skipped, or ``None`` if it is in scope.

    A file that breaks Google's documented shape is ``malformed_item`` / ``invalid_field``.
    Trashed is checked first because it is the state the user chose; then type, then size. A file
    without a size is never too large: Drive omits size for items it does not measure.
    """
    problem = payloads.drive_file_problem(file)
    if problem is not None:
        return SkipReason(problem)
    if file.get("trashed") is True:
        return SkipReason.TRASHED
    if file.get("mimeType") not in limits.supported_mime_types:
        return SkipReason.UNSUPPORTED_TYPE
    size = parse_size(file.get("size"))
    if size is not None and size > limits.max_file_size_bytes:
        return SkipReason.TOO_LARGE
    return None


def normalise_drive_file(file: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's shape (connectors-v1.md §2.2), exactly these keys.

    ``owners`` is ``[]`` when Drive sends none (shared-drive items have no owners);
    ``modifiedTime`` is Drive's RFC 3339 string as sent (the parsed instant is on the record).
    """
    owners = file.get("owners")
    owners = owners if isinstance(owners, list) else []
    return {
        "id": file.get("id"),
        "name": file.get("name"),
        "mimeType": file.get("mimeType"),
        "modifiedTime": file.get("modifiedTime"),
        "owners": [
            {"emailAddress": owner["emailAddress"]}
            for owner in owners
            # dict, not Mapping: an ABC isinstance check costs more than the rest of the row.
            if isinstance(owner, dict) and owner.get("emailAddress")
        ],
        "webViewLink": file.get("webViewLink") or None,
    }


def to_file_record(
    file: Mapping[str, Any], *, clean: bool = False, sharing: SharingContext = NO_SHARING
) -> FileRecord:
    """The ``connector_files`` row for one Drive File; ``meta`` = spec shape + META_EXTRA_KEYS +
    the sharing keys (``sharing_meta``).

    ``clean``: the caller found nothing to scrub in it (``payloads.needs_scrub``)."""
    normalised = normalise_drive_file(file)
    if not clean:
        normalised = payloads.scrub(normalised)
    meta = dict(normalised)
    for key in META_EXTRA_KEYS:
        value = file.get(key)
        if value is not None:
            meta[key] = value if clean else payloads.scrub(value)
    shared = sharing_meta(file, sharing)
    if shared is not None:
        meta.update(shared if clean else payloads.scrub(shared))
    return FileRecord(
        external_id=str(file["id"]),
        title=normalised["name"],
        mime=normalised["mimeType"],
        size=parse_size(file.get("size")),
        modified_at=parse_rfc3339(file.get("modifiedTime")),
        url=normalised["webViewLink"],
        meta=meta,
    )


def read_listing(
    files: list[Any], limits: DriveLimits, sharing: SharingContext = NO_SHARING
) -> tuple[list[FileRecord], list[tuple[SkipReason, str]]]:
    """A files.list page as the rows to store and the (reason, id) of each file skipped."""
    clean = not payloads.needs_scrub(files)
    records: list[FileRecord] = []
    skipped: list[tuple[SkipReason, str]] = []
    for file in files:
        skip = classify_drive_file(file, limits)
        if skip is None:
            records.append(to_file_record(file, clean=clean, sharing=sharing))
        else:
            skipped.append((skip, payloads.item_key(file)))
    return records, skipped


class ChangeAction(StrEnum):
    UPSERT = "upsert"  # write the record; also revives a tombstoned row
    TOMBSTONE = "tombstone"  # mark the row gone with ``tombstone.reason``
    DRIVE_REMOVED = "drive_removed"  # tombstone every row of ``drive_id`` with ``reason``
    IGNORE = "ignore"  # nothing to do at file level


@dataclass(frozen=True, slots=True)
class PriorState:
    """What the store knew about a file before this change; evidence for removed changes."""

    trashed: bool = False
    owned_by_me: bool | None = None
    drive_id: str | None = None

    @classmethod
    def from_row(cls, meta: Mapping[str, Any] | None, deleted_reason: str | None) -> PriorState:
        """Build it from a stored row's ``meta_json`` and ``deleted_reason``."""
        meta = meta or {}
        owned = meta.get("ownedByMe")
        return cls(
            trashed=deleted_reason == TombstoneReason.TRASHED,
            owned_by_me=owned if isinstance(owned, bool) else None,
            drive_id=meta.get("driveId"),
        )


@dataclass(frozen=True, slots=True)
class ChangeDecision:
    action: ChangeAction
    file_id: str | None = None
    record: FileRecord | None = None
    reason: TombstoneReason | None = None
    drive_id: str | None = None
    # With IGNORE: the entry breaks Google's documented shape; the skip reason to count it under.
    invalid: str | None = None

    @property
    def tombstone(self) -> Tombstone | None:
        if self.action is not ChangeAction.TOMBSTONE or self.file_id is None or self.reason is None:
            return None
        return Tombstone(external_id=self.file_id, reason=self.reason)


def _decide_file(
    file: Mapping[str, Any], limits: DriveLimits, sharing: SharingContext = NO_SHARING
) -> ChangeDecision:
    file_id = payloads.item_key(file)
    skip = classify_drive_file(file, limits)
    if skip in (SkipReason.MALFORMED_ITEM, SkipReason.INVALID_FIELD):
        return ChangeDecision(ChangeAction.IGNORE, file_id=file_id, invalid=str(skip))
    if skip is None:
        record = to_file_record(file, sharing=sharing)
        return ChangeDecision(ChangeAction.UPSERT, file_id=file_id, record=record)
    return ChangeDecision(ChangeAction.TOMBSTONE, file_id=file_id, reason=_SKIP_TO_TOMBSTONE[skip])


def _decide_removed(file_id: str, prior: PriorState | None) -> ChangeDecision:
    prior = prior or PriorState()
    if prior.trashed or (prior.owned_by_me is True and prior.drive_id is None):
        return ChangeDecision(ChangeAction.TOMBSTONE, file_id=file_id, reason=TombstoneReason.DELETED)
    return ChangeDecision(ChangeAction.TOMBSTONE, file_id=file_id, reason=TombstoneReason.ACCESS_LOST)


def decide_change(
    change: Mapping[str, Any],
    limits: DriveLimits,
    prior: PriorState | None = None,
    sharing: SharingContext = NO_SHARING,
) -> ChangeDecision:
    """What one ``changes.list`` entry means for the store; ``prior`` is the stored row's state."""
    problem = payloads.drive_change_problem(change)
    if problem is not None:
        file = change.get("file") if isinstance(change, Mapping) else None
        file_id = payloads.item_key(change, "fileId")
        if file_id == payloads.NO_ID:
            file_id = payloads.item_key(file)
        return ChangeDecision(ChangeAction.IGNORE, file_id=file_id, invalid=problem)
    if change.get("changeType") == "drive":
        drive_id = change.get("driveId")
        if change.get("removed") is True and drive_id:
            return ChangeDecision(
                ChangeAction.DRIVE_REMOVED,
                drive_id=str(drive_id),
                reason=TombstoneReason.ACCESS_LOST,
            )
        return ChangeDecision(ChangeAction.IGNORE, drive_id=drive_id)

    file = change.get("file")
    raw_id = payloads.usable_id(change.get("fileId")) or (
        payloads.usable_id(file.get("id")) if isinstance(file, Mapping) else None
    )
    if not raw_id:
        return ChangeDecision(ChangeAction.IGNORE)
    file_id = str(raw_id)
    if change.get("removed") is True:
        return _decide_removed(file_id, prior)
    if not isinstance(file, Mapping):
        # Google only omits ``file`` on removals; tombstoning on a missing field would hide a
        # live file, so an entry we cannot read changes nothing.
        return ChangeDecision(ChangeAction.IGNORE, file_id=file_id)
    return _decide_file({**file, "id": file.get("id") or file_id}, limits, sharing)


def decide_lookup(
    file_id: str,
    status_code: int | None,
    file: Mapping[str, Any] | None,
    limits: DriveLimits,
    prior: PriorState | None = None,
    sharing: SharingContext = NO_SHARING,
) -> ChangeDecision:
    """Refine an inferred removal (``ACCESS_LOST``) with the result of ``files.get(fileId)``.

    A returned file wins (its real state is known); 403/404/no answer leave the inference as is.
    """
    if file is not None and (status_code is None or 200 <= status_code < 300):
        return _decide_file({**file, "id": file.get("id") or file_id}, limits, sharing)
    return _decide_removed(file_id, prior)


def corpus_args(drive_id: str | None, *, for_changes: bool = False) -> dict[str, Any]:
    """One corpus per token: My Drive alone, or one shared drive alone, never both in one feed.

    Shared-drive items reach the user's feed only with includeItemsFromAllDrives, which stays
    off there: with shared drives on nothing is counted twice, and off, nothing leaks in.
    """
    if drive_id:
        args: dict[str, Any] = {
            "driveId": drive_id,
            "includeItemsFromAllDrives": True,
            "supportsAllDrives": True,
        }
        return args if for_changes else {**args, "corpora": "drive"}
    args = {"supportsAllDrives": True, "includeItemsFromAllDrives": False}
    return args if for_changes else {**args, "corpora": "user"}
