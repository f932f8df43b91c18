"""One account's Drive: compact file records, the changes feed, mutations and File JSON.

Records are slot dataclasses holding only what cannot be derived (links, checksums, kinds and
the like are computed when a page is rendered), so 100,000 files cost tens of megabytes and
memory does not grow with the number of requests.

The changes feed works as Drive's does: every mutation gives the file a new, higher change id;
a file appears once in ``changes.list``, at its latest change, with its current state
(``removed`` when deleted or no longer visible to the user, ``file.trashed`` when trashed).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monolyth_pipelines.emulator import drive_sharing
from monolyth_pipelines.emulator.content import BinaryContent
from monolyth_pipelines.emulator.drive_sharing import Grant
from monolyth_pipelines.emulator.fields import FieldMask, Tree, apply_tree
from monolyth_pipelines.emulator.paging import View
from monolyth_pipelines.emulator.timeutil import rfc3339, to_ms

APPS = "application/vnd.google-apps."
DOCS = APPS + "document"
SHEETS = APPS + "spreadsheet"
SLIDES = APPS + "presentation"
DRAWING = APPS + "drawing"
FORM = APPS + "form"
FOLDER = APPS + "folder"
SHORTCUT = APPS + "shortcut"
EDITOR_TYPES = frozenset({DOCS, SHEETS, SLIDES, DRAWING})

ACTIVE, DELETED, ACCESS_LOST = 0, 1, 2
NOT_TRASHED, TRASHED_EXPLICITLY, TRASHED_WITH_PARENT = 0, 1, 2

_MISSING: Any = object()
Projection = list[tuple[str, Callable[["DriveStore", "DriveFile"], Any], Tree | None]]


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str
    permission_id: str


def person_for(email: str, name: str) -> Person:
    """A Drive user with a stable permission id derived from the address."""
    return Person(email, name, str(int(hashlib.sha1(email.encode()).hexdigest()[:15], 16)))


@dataclass(frozen=True, slots=True)
class SharedDrive:
    id: str
    name: str
    created_ms: int
    members: tuple[Grant, ...] = ()  # inherited by every item in the drive


@dataclass(slots=True, eq=False)
class DriveFile:
    seq: int
    id: str
    name: str
    mime: str
    created_ms: int
    modified_ms: int
    size: int | None  # binary: content length; editor files: storage size; None: no size
    export_size: int  # editor files: length of a text export (declared, generated lazily)
    version: int
    parent: str | None
    owner: int  # index into DriveStore.people; -1 for shared-drive items (they have no owners)
    drive_id: str | None
    trash: int = NOT_TRASHED
    state: int = ACTIVE
    change_id: int = 0
    change_ms: int = 0
    trashed_ms: int = 0
    content_rev: int = 0  # bumped by content edits only: a rename keeps the bytes and the md5
    md5: str | None = None  # cached: computing it costs a short tail of content
    shares: tuple[Grant, ...] | None = None  # grants beyond the owner (drive_sharing.py)

    @property
    def trashed(self) -> bool:
        return self.trash != NOT_TRASHED

    @property
    def is_binary(self) -> bool:
        return not self.mime.startswith(APPS)

    def content(self) -> BinaryContent:
        return BinaryContent(self.mime, self.size or 0, f"{self.id}:{self.content_rev}")


def _natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))


_ORDER_KEYS: dict[str, Callable[[DriveFile], Any]] = {
    "createdTime": lambda f: f.created_ms,
    "modifiedTime": lambda f: f.modified_ms,
    "name": lambda f: f.name,
    "name_natural": lambda f: _natural_key(f.name),
    "folder": lambda f: f.parent or "",
    "quotaBytesUsed": lambda f: f.size or 0,
    "recency": lambda f: max(f.modified_ms, f.created_ms),
    # Not modelled: nothing is starred, and "by me" times follow modifiedTime.
    "starred": lambda f: 0,
    "modifiedByMeTime": lambda f: f.modified_ms,
    "viewedByMeTime": lambda f: f.modified_ms,
    "sharedWithMeTime": lambda f: f.created_ms,
}


def parse_order(order_by: str | None) -> tuple[tuple[str, bool], ...] | None:
    """``orderBy`` as ((key, descending), ...); ``None`` for the default order. ValueError if bad."""
    if order_by is None or order_by.strip() == "":
        return None
    keys = []
    for item in order_by.split(","):
        words = item.split()
        if not words or len(words) > 2 or words[0] not in _ORDER_KEYS:
            raise ValueError(item)
        if len(words) == 2 and words[1].lower() not in ("asc", "desc"):
            raise ValueError(item)
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return tuple(keys)


class DriveStore:
    """The Drive of one account. Public methods are the mutation and read API tests use."""

    def __init__(
        self,
        person: Person,
        *,
        seed_key: str,
        lock: threading.RLock,
        clock: Callable[[], float],
    ) -> None:
        self.me = person
        self.people: list[Person] = [person]
        self._lock = lock
        self._clock = clock
        self._rng = random.Random("drive-ids:" + seed_key)
        self.root_id = self.new_drive_id()
        self.shared_drives: list[SharedDrive] = []
        self.records: list[DriveFile] = []
        self.by_id: dict[str, DriveFile] = {}
        self.log: list[DriveFile] = []  # log[i] holds the file whose latest change id was i + 1
        self.generation = 0
        self.shortcut_targets: dict[str, tuple[str, str]] = {}
        self._views: dict[tuple[tuple[str, bool], ...], View[DriveFile]] = {}
        self._seq_view: View[DriveFile] = View(self.records, lambda f: f.seq, 0)
        self.push: Any = None  # the emulator's PushHub (emulator/push.py), set by add_account

    # --- ids and time -------------------------------------------------------------------------

    def _random_id(self, length: int) -> str:
        # base64url of random bytes: Drive's id alphabet, and fast enough for 100,000 files.
        return base64.urlsafe_b64encode(self._rng.randbytes(length * 3 // 4 + 3)).decode()[:length]

    def new_file_id(self) -> str:
        while True:
            file_id = "1" + self._random_id(32)
            if file_id not in self.by_id:
                return file_id

    def new_drive_id(self) -> str:
        return "0A" + self._random_id(17) + "Uk9PVA"

    def _now_ms(self, after: int = 0) -> int:
        # Never let a mutation move time backwards, even with a corpus dated in the future.
        return max(int(self._clock() * 1000), after + 1)

    # --- internal bookkeeping -------------------------------------------------------------------

    def _record_change(self, rec: DriveFile, now_ms: int) -> None:
        self.log.append(rec)
        rec.change_id = len(self.log)
        rec.change_ms = now_ms
        self.generation += 1
        if self.push is not None:
            self.push.drive_changed(self.me.email, rec.drive_id)

    def adopt(self, records: Iterable[DriveFile]) -> None:
        """Add generated records as they stand, each with one change in the feed."""
        for rec in records:
            rec.seq = len(self.records)
            self.records.append(rec)
            self.by_id[rec.id] = rec
            self.log.append(rec)
            rec.change_id = len(self.log)
            rec.change_ms = rec.change_ms or rec.modified_ms
        self.generation += 1

    def person_index(self, email: str, name: str | None = None) -> int:
        for index, person in enumerate(self.people):
            if person.email == email:
                return index
        self.people.append(person_for(email, name or email.split("@")[0]))
        return len(self.people) - 1

    def owner_email(self, rec: Any) -> str | None:
        return None if rec.owner < 0 else self.people[rec.owner].email

    def _get(self, file_id: str, *, alive: bool = True) -> DriveFile:
        rec = self.by_id.get(file_id)
        if rec is None or (alive and rec.state != ACTIVE):
            raise KeyError(f"no such file: {file_id}")
        return rec

    def _descendants(self, folder_id: str) -> Iterator[DriveFile]:
        pending = [folder_id]
        while pending:
            parent = pending.pop()
            for rec in self.records:
                if rec.parent == parent and rec.state == ACTIVE:
                    yield rec
                    if rec.mime == FOLDER:
                        pending.append(rec.id)

    # --- views for files.list -------------------------------------------------------------------

    def view(self, order: tuple[tuple[str, bool], ...] | None) -> View[DriveFile]:
        if order is None:
            return self._seq_view  # append-only: positions never move, no need to rebuild
        cached = self._views.get(order)
        if cached is not None and cached.generation == self.generation:
            return cached
        items = list(self.records)
        for key_name, descending in reversed(order):
            items.sort(key=_ORDER_KEYS[key_name], reverse=descending)
        built = View(items, lambda f: f.seq, self.generation)
        self._views[order] = built
        return built

    # --- mutations (the Python API) -------------------------------------------------------------

    def create_file(
        self,
        name: str,
        mime_type: str,
        *,
        size: int | None = None,
        parent: str | None = None,
        modified_time: datetime | str | float | None = None,
        created_time: datetime | str | float | None = None,
        owner: str | None = None,
        shared_drive: str | None = None,
        trashed: bool = False,
        export_size: int | None = None,
    ) -> dict[str, Any]:
        """Add a file as if uploaded or created now; an explicit ``modified_time`` may be in the past.

        ``shared_drive`` is a shared drive id (see ``shared_drive_ids``); ``owner`` an email of
        whoever shared it with the account (default: the account itself).
        """
        with self._lock:
            now = self._now_ms()
            modified = to_ms(modified_time) if modified_time is not None else now
            created = to_ms(created_time) if created_time is not None else min(now, modified)
            if shared_drive is not None and shared_drive not in self.shared_drive_ids():
                raise KeyError(f"no such shared drive: {shared_drive}")
            if mime_type in (FOLDER, SHORTCUT, FORM):
                stored_size: int | None = None
            elif mime_type.startswith(APPS):
                stored_size = 1024 if size is None else size
            else:
                stored_size = size or 0
            if export_size is None:
                export_size = 2048 if mime_type in EDITOR_TYPES else 0
            rec = DriveFile(
                seq=len(self.records),
                id=self.new_file_id(),
                name=name,
                mime=mime_type,
                created_ms=created,
                modified_ms=modified,
                size=stored_size,
                export_size=export_size,
                version=1,
                parent=parent or shared_drive or self.root_id,
                owner=-1 if shared_drive else (self.person_index(owner) if owner else 0),
                drive_id=shared_drive,
                trash=TRASHED_EXPLICITLY if trashed else NOT_TRASHED,
                trashed_ms=now if trashed else 0,
            )
            if rec.owner > 0:
                # Someone shared it with the user, who may edit (and so see who else can).
                rec.shares = (drive_sharing.grant("user", "writer", self.me.email),)
            self.records.append(rec)
            self.by_id[rec.id] = rec
            self._record_change(rec, now)
            return self.file_json(rec)

    def modify(
        self, file_id: str, *, size: int | None = None, modified_time: datetime | str | float | None = None
    ) -> dict[str, Any]:
        """A content edit: new version, new modifiedTime, new checksum (and size, if given)."""
        with self._lock:
            rec = self._get(file_id)
            now = self._now_ms(rec.modified_ms)
            rec.version += 1
            rec.content_rev += 1
            rec.md5 = None
            rec.modified_ms = to_ms(modified_time) if modified_time is not None else now
            if size is not None:
                rec.size = size
            self._record_change(rec, now)
            return self.file_json(rec)

    def rename(self, file_id: str, name: str) -> dict[str, Any]:
        with self._lock:
            rec = self._get(file_id)
            now = self._now_ms(rec.modified_ms)
            rec.name = name
            rec.version += 1
            rec.modified_ms = now
            self._record_change(rec, now)
            return self.file_json(rec)

    def trash(self, file_id: str) -> dict[str, Any]:
        """Move to the trash; a folder's contents follow it (trashed, not explicitly)."""
        with self._lock:
            rec = self._get(file_id)
            now = self._now_ms()
            for target, mode in [(rec, TRASHED_EXPLICITLY)] + [
                (child, TRASHED_WITH_PARENT) for child in self._descendants(rec.id) if not child.trashed
            ]:
                target.trash = mode
                target.trashed_ms = now
                target.version += 1
                self._record_change(target, now)
            return self.file_json(rec)

    def untrash(self, file_id: str) -> dict[str, Any]:
        """Restore from the trash, with whatever was trashed along with it."""
        with self._lock:
            rec = self._get(file_id)
            now = self._now_ms()
            restored = [rec] + [c for c in self._descendants(rec.id) if c.trash == TRASHED_WITH_PARENT]
            for target in restored:
                target.trash = NOT_TRASHED
                target.trashed_ms = 0
                target.version += 1
                self._record_change(target, now)
            return self.file_json(rec)

    def delete(self, file_id: str) -> None:
        """Permanent deletion (a folder takes its contents with it): ``removed`` in changes, 404 after."""
        with self._lock:
            rec = self._get(file_id)
            now = self._now_ms()
            for target in [rec, *self._descendants(rec.id)]:
                target.state = DELETED
                self._record_change(target, now)

    def lose_access(self, file_id: str) -> None:
        """The user can no longer see the file (unshared): ``removed`` in changes, 404 on files.get."""
        with self._lock:
            rec = self._get(file_id)
            rec.state = ACCESS_LOST
            self._record_change(rec, self._now_ms())

    def share(
        self,
        file_id: str,
        *,
        type: str = "user",
        role: str = "reader",
        email: str | None = None,
        domain: str | None = None,
        discoverable: bool = False,
    ) -> dict[str, Any]:
        """Grant ``role`` to a user or group (``email``), a ``domain``, or ``anyone`` (with the link;
        ``discoverable``: findable too, i.e. public). Replaces an earlier grant to the same grantee.
        Like Drive: ``version`` + 1, ``modifiedTime`` unchanged, one change in the feed."""
        with self._lock:
            rec = self._get(file_id)
            new = drive_sharing.grant(type, role, email or domain or "", discoverable)
            kept = [g for g in rec.shares or () if (g[0], g[2]) != (new[0], new[2])]
            rec.shares = (*kept, new)
            return self._sharing_changed(rec)

    def unshare(
        self,
        file_id: str,
        *,
        type: str = "user",
        email: str | None = None,
        domain: str | None = None,
    ) -> dict[str, Any]:
        """Remove the file's own grant to that grantee (``type="anyone"``: the link); KeyError if none."""
        with self._lock:
            rec = self._get(file_id)
            who = "" if type == "anyone" else (email or domain or "").lower()
            kept = tuple(g for g in rec.shares or () if (g[0], g[2]) != (type, who))
            if len(kept) == len(rec.shares or ()):
                raise KeyError(f"{file_id} has no {type} grant to {who or 'anyone'}")
            rec.shares = kept or None
            return self._sharing_changed(rec)

    def make_private(self, file_id: str) -> dict[str, Any]:
        """Remove every grant on the file but its owner's (and a shared drive's members')."""
        with self._lock:
            rec = self._get(file_id)
            rec.shares = None
            return self._sharing_changed(rec)

    def permissions(self, file_id: str) -> list[dict[str, Any]]:
        """Every permission of a visible file, as permissions.list gives them."""
        with self._lock:
            return drive_sharing.permissions_json(self, self._get(file_id))

    def _sharing_changed(self, rec: DriveFile) -> dict[str, Any]:
        rec.version += 1
        self._record_change(rec, self._now_ms())
        return self.file_json(rec)

    def restore_access(self, file_id: str) -> dict[str, Any]:
        """Shared again after ``lose_access``: the file comes back in changes and listings."""
        with self._lock:
            rec = self._get(file_id, alive=False)
            if rec.state != ACCESS_LOST:
                raise KeyError(f"access to {file_id} was not lost")
            rec.state = ACTIVE
            self._record_change(rec, self._now_ms())
            return self.file_json(rec)

    # --- reads (the Python API) -----------------------------------------------------------------

    def shared_drive_ids(self) -> list[str]:
        return [drive.id for drive in self.shared_drives]

    def start_page_token(self) -> str:
        with self._lock:
            return str(len(self.log) + 1)

    def file(self, file_id: str) -> dict[str, Any]:
        """The full File resource of a visible file (KeyError when deleted or access is lost)."""
        with self._lock:
            return self.file_json(self._get(file_id))

    def files(
        self, *, include_trashed: bool = True, include_shared_drives: bool = True
    ) -> list[dict[str, Any]]:
        """Every visible file as a full File resource, in creation order."""
        with self._lock:
            return [
                self.file_json(rec)
                for rec in self.records
                if rec.state == ACTIVE
                and (include_trashed or not rec.trashed)
                and (include_shared_drives or rec.drive_id is None)
            ]

    def removed_ids(self) -> list[str]:
        """Ids of files deleted or no longer visible to the user."""
        with self._lock:
            return [rec.id for rec in self.records if rec.state != ACTIVE]

    # --- JSON -----------------------------------------------------------------------------------

    def md5_of(self, rec: DriveFile) -> str:
        if rec.md5 is None:
            rec.md5 = rec.content().md5()
        return rec.md5

    def user_json(self, index: int) -> dict[str, Any]:
        person = self.people[index]
        return {
            "kind": "drive#user",
            "displayName": person.name,
            "me": index == 0,
            "permissionId": person.permission_id,
            "emailAddress": person.email,
        }

    def projection(self, mask: FieldMask | None) -> Projection:
        """What ``render`` computes for ``mask``: worked out once per page, not once per file."""
        if mask is None or mask.is_everything:
            chosen = [(name, _FIELDS[name], None) for name in _FIELD_ORDER]
        else:
            chosen = [(name, _FIELDS[name], mask.subtree(name)) for name in _FIELD_ORDER if name in mask.tree]
        # Permissions repeat across a page's files: each grant is rendered and masked once a page.
        return [
            (name, drive_sharing.masked_permissions(subtree, _MISSING), None)
            if name == "permissions"
            else (name, getter, subtree)
            for name, getter, subtree in chosen
        ]

    def render(self, rec: DriveFile, projection: Projection) -> dict[str, Any]:
        """The File resource restricted to ``projection``: unasked fields are never computed."""
        out: dict[str, Any] = {}
        for name, getter, subtree in projection:
            value = getter(self, rec)
            if value is not _MISSING:
                out[name] = value if subtree is None else apply_tree(value, subtree)
        return out

    def file_json(self, rec: DriveFile) -> dict[str, Any]:
        """The full File resource."""
        return self.render(rec, self.projection(None))


_EXPORT_FORMATS: dict[str, tuple[str, ...]] = {
    DOCS: (
        "application/rtf",
        "application/vnd.oasis.opendocument.text",
        "text/html",
        "application/pdf",
        "text/markdown",
        "application/epub+zip",
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/plain",
    ),
    SHEETS: (
        "application/x-vnd.oasis.opendocument.spreadsheet",
        "text/tab-separated-values",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "text/csv",
        "application/zip",
        "application/vnd.oasis.opendocument.spreadsheet",
    ),
    SLIDES: (
        "application/vnd.oasis.opendocument.presentation",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "text/plain",
    ),
    DRAWING: ("image/svg+xml", "image/png", "application/pdf", "image/jpeg"),
}
EXPORT_FORMATS = _EXPORT_FORMATS

_EDITOR_PATHS = {DOCS: "document", SHEETS: "spreadsheets", SLIDES: "presentation", DRAWING: "drawings"}


def _web_view_link(rec: DriveFile) -> str:
    if rec.mime in _EDITOR_PATHS:
        return f"https://docs.google.com/{_EDITOR_PATHS[rec.mime]}/d/{rec.id}/edit?usp=drivesdk"
    if rec.mime == FOLDER:
        return f"https://drive.google.com/drive/folders/{rec.id}"
    if rec.mime == FORM:
        return f"https://docs.google.com/forms/d/{rec.id}/edit?usp=drivesdk"
    return f"https://drive.google.com/file/d/{rec.id}/view?usp=drivesdk"


def _export_links(rec: DriveFile) -> Any:
    formats = _EXPORT_FORMATS.get(rec.mime)
    if not formats:
        return _MISSING
    path = _EDITOR_PATHS[rec.mime]
    return {
        fmt: f"https://docs.google.com/feeds/download/{path}/Export?id={rec.id}&exportFormat="
        + fmt.rsplit("/", 1)[-1]
        for fmt in formats
    }


def _extension(rec: DriveFile) -> Any:
    if not rec.is_binary or "." not in rec.name:
        return _MISSING
    return rec.name.rsplit(".", 1)[1]


def _full_extension(rec: DriveFile) -> Any:
    if not rec.is_binary or "." not in rec.name:
        return _MISSING
    return rec.name.split(".", 1)[1] if rec.name.count(".") <= 2 else rec.name.rsplit(".", 1)[1]


def _binary(getter: Callable[[DriveStore, DriveFile], Any]) -> Callable[[DriveStore, DriveFile], Any]:
    return lambda store, rec: getter(store, rec) if rec.is_binary else _MISSING


def _shared(getter: Callable[[DriveStore, DriveFile], Any]) -> Callable[[DriveStore, DriveFile], Any]:
    return lambda store, rec: getter(store, rec) if rec.drive_id else _MISSING


def _owned(getter: Callable[[DriveStore, DriveFile], Any]) -> Callable[[DriveStore, DriveFile], Any]:
    return lambda store, rec: getter(store, rec) if rec.owner >= 0 else _MISSING


_FIELDS: dict[str, Callable[[DriveStore, DriveFile], Any]] = {
    "kind": lambda s, f: "drive#file",
    "id": lambda s, f: f.id,
    "name": lambda s, f: f.name,
    "mimeType": lambda s, f: f.mime,
    "starred": lambda s, f: False,
    "trashed": lambda s, f: f.trashed,
    "explicitlyTrashed": lambda s, f: f.trash == TRASHED_EXPLICITLY,
    "trashedTime": lambda s, f: rfc3339(f.trashed_ms) if f.drive_id and f.trashed else _MISSING,
    "trashingUser": lambda s, f: s.user_json(0) if f.drive_id and f.trashed else _MISSING,
    "parents": lambda s, f: [f.parent] if f.parent else _MISSING,
    "spaces": lambda s, f: ["drive"],
    "version": lambda s, f: str(f.version),
    "webContentLink": _binary(lambda s, f: f"https://drive.google.com/uc?id={f.id}&export=download"),
    "webViewLink": lambda s, f: _web_view_link(f),
    "iconLink": lambda s, f: f"https://drive-thirdparty.googleusercontent.com/16/type/{f.mime}",
    "hasThumbnail": lambda s, f: (
        f.mime.startswith("image/") or f.mime == "application/pdf" or f.mime in EDITOR_TYPES
    ),
    "thumbnailVersion": lambda s, f: "0",
    "viewedByMe": lambda s, f: True,
    "createdTime": lambda s, f: rfc3339(f.created_ms),
    "modifiedTime": lambda s, f: rfc3339(f.modified_ms),
    "modifiedByMeTime": lambda s, f: rfc3339(f.modified_ms) if f.owner == 0 else _MISSING,
    "modifiedByMe": lambda s, f: f.owner == 0,
    "owners": _owned(lambda s, f: [s.user_json(f.owner)]),
    "permissions": drive_sharing.masked_permissions(None, _MISSING),
    "hasAugmentedPermissions": _shared(lambda s, f: bool(f.shares)),
    "lastModifyingUser": lambda s, f: s.user_json(max(f.owner, 0)),
    "shared": lambda s, f: f.owner != 0 or bool(f.shares),
    "ownedByMe": lambda s, f: f.owner == 0,
    "viewersCanCopyContent": lambda s, f: True,
    "copyRequiresWriterPermission": lambda s, f: False,
    "writersCanShare": lambda s, f: True,
    "originalFilename": _binary(lambda s, f: f.name),
    "fullFileExtension": lambda s, f: _full_extension(f),
    "fileExtension": lambda s, f: _extension(f),
    "md5Checksum": _binary(lambda s, f: s.md5_of(f)),
    "size": lambda s, f: _MISSING if f.size is None else str(f.size),
    "quotaBytesUsed": lambda s, f: str(f.size or 0) if f.is_binary and f.owner == 0 else "0",
    "headRevisionId": _binary(
        lambda s, f: "0B" + hashlib.sha1(f"{f.id}:{f.content_rev}".encode()).hexdigest()[:40]
    ),
    "exportLinks": lambda s, f: _export_links(f),
    "isAppAuthorized": lambda s, f: False,
    "shortcutDetails": lambda s, f: (
        {"targetId": s.shortcut_targets[f.id][0], "targetMimeType": s.shortcut_targets[f.id][1]}
        if f.id in s.shortcut_targets
        else _MISSING
    ),
    "driveId": _shared(lambda s, f: f.drive_id),
    "teamDriveId": _shared(lambda s, f: f.drive_id),
}
_FIELD_ORDER = list(_FIELDS)
