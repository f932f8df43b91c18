"""Drive v3 methods over the Drive model: parameters, errors and response shapes as Google has them."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

from monolyth_pipelines.emulator.calls import ApiResponse, CallContext, Route, bytes_response, json_response
from monolyth_pipelines.emulator.content import BinaryContent, minimal_pdf, sentences, text_export
from monolyth_pipelines.emulator.drive import (
    ACTIVE,
    EXPORT_FORMATS,
    DriveFile,
    DriveStore,
    Projection,
    parse_order,
)
from monolyth_pipelines.emulator.drive_sharing import permissions_list
from monolyth_pipelines.emulator.errors import ApiError, invalid_parameter, not_found, required_parameter
from monolyth_pipelines.emulator.fields import FieldMask
from monolyth_pipelines.emulator.oauth import DRIVE_CONTENT_SCOPES, DRIVE_SCOPES, require_scope
from monolyth_pipelines.emulator.paging import cursor, fingerprint, resume, scan
from monolyth_pipelines.emulator.query import QueryContext, compile_query
from monolyth_pipelines.emulator.timeutil import rfc3339

EXPORT_LIMIT = 10 * 1024 * 1024
# Google caps changes.list pages when the whole File resource is asked for.
FULL_FILE_CHANGES_PAGE_CAP = 50
CORPORA = frozenset({"user", "domain", "drive", "allDrives"})

_DEFAULT_LIST_FIELDS = FieldMask.parse("kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)")
_DEFAULT_FILE_FIELDS = FieldMask.parse("kind,id,name,mimeType")
_DEFAULT_CHANGES_FIELDS = FieldMask.parse(
    "kind,nextPageToken,newStartPageToken,"
    "changes(kind,removed,file(kind,id,name,mimeType),fileId,time,driveId,teamDriveId,type,changeType)"
)

Ctx = CallContext[DriveStore]


PREBUILT_FILES = frozenset({"files"})
PREBUILT_CHANGES = frozenset({"changes"})


def _all_drives(ctx: Ctx) -> tuple[bool, bool]:
    req = ctx.request
    supports = req.bool_param("supportsAllDrives") or req.bool_param("supportsTeamDrives")
    include = req.bool_param("includeItemsFromAllDrives") or req.bool_param("includeTeamDriveItems")
    return supports, include


def _shared_drive_param(ctx: Ctx) -> str | None:
    drive_id = ctx.request.param("driveId") or ctx.request.param("teamDriveId")
    if drive_id and drive_id not in ctx.store.shared_drive_ids():
        raise not_found(f"Shared drive not found: {drive_id}", location="driveId")
    return drive_id or None


def _visible_file(ctx: Ctx, *, needs_all_drives_flag: bool) -> DriveFile:
    file_id = ctx.request.path_params["fileId"]
    rec = ctx.store.by_id.get(file_id)
    supports, _ = _all_drives(ctx)
    if (
        rec is None
        or rec.state != ACTIVE
        # Without supportsAllDrives a shared-drive item is invisible, as on Google.
        or (needs_all_drives_flag and rec.drive_id is not None and not supports)
    ):
        raise not_found(f"File not found: {file_id}.", location="fileId")
    return rec


def files_list(ctx: Ctx) -> ApiResponse:
    req, store = ctx.request, ctx.store
    require_scope(ctx.caller, DRIVE_SCOPES)
    mask = req.field_mask("drive.v3", "FileList") or _DEFAULT_LIST_FIELDS
    page_size = req.int_param("pageSize", 100, minimum=1, maximum=1000, strict=ctx.strict)
    corpora = req.param("corpora") or req.param("corpus") or "user"
    if corpora not in CORPORA:
        raise invalid_parameter("corpora")
    _, include_all = _all_drives(ctx)
    drive_id = _shared_drive_param(ctx)
    if (corpora == "drive") != (drive_id is not None):
        raise ApiError(
            400,
            "The driveId parameter must be specified if and only if corpora is set to drive.",
            "invalid",
            location="driveId",
        )
    if corpora in ("drive", "allDrives") and not include_all:
        raise ApiError(
            400,
            "The includeItemsFromAllDrives parameter must be set to true when corpora is set "
            "to drive or allDrives.",
            "invalid",
            location="includeItemsFromAllDrives",
        )
    order_by = req.param("orderBy")
    try:
        order = parse_order(order_by)
    except ValueError as exc:
        raise invalid_parameter("orderBy", f"Invalid Value: sorting is not supported for {exc}") from None
    q = req.param("q")
    predicate = compile_query(q, QueryContext(store.root_id, store.owner_email, store.me.email))

    def keep(rec: DriveFile) -> bool:
        if rec.state != ACTIVE:
            return False
        if drive_id is not None:
            if rec.drive_id != drive_id:
                return False
        elif rec.drive_id is not None and not include_all:
            return False
        return predicate is None or predicate(rec)

    query_key = fingerprint("files", q, corpora, drive_id, include_all, order_by)
    view = store.view(order)
    token = req.param("pageToken")
    start = resume(view, ctx.codec.decode(token), query_key) if token else 0
    found, next_pos = scan(view, start, page_size, keep)

    body: dict[str, Any] = {"kind": "drive#fileList"}
    if next_pos is not None:
        body["nextPageToken"] = ctx.codec.encode(cursor(view, next_pos, query_key))
    body["incompleteSearch"] = False
    if mask.selects("files"):
        projection = store.projection(mask.sub("files"))
        body["files"] = [store.render(rec, projection) for rec in found]
    return json_response(mask.apply(body, prebuilt=PREBUILT_FILES))


def files_get(ctx: Ctx) -> ApiResponse:
    require_scope(ctx.caller, DRIVE_SCOPES)
    rec = _visible_file(ctx, needs_all_drives_flag=True)
    if ctx.request.param("alt") == "media":
        return _media(ctx, rec)
    mask = ctx.request.field_mask("drive.v3", "File") or _DEFAULT_FILE_FIELDS
    return json_response(ctx.store.render(rec, ctx.store.projection(mask)))


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _media(ctx: Ctx, rec: DriveFile) -> ApiResponse:
    require_scope(ctx.caller, DRIVE_CONTENT_SCOPES)
    if not rec.is_binary:
        raise ApiError(
            403,
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
            "fileNotDownloadable",
            location="alt",
        )
    content = rec.content()
    size = content.size
    start, end, status = 0, size, 200
    headers: list[tuple[str, str]] = [("Accept-Ranges", "bytes")]
    requested = ctx.request.header("range")
    if requested:
        match = _RANGE.match(requested.strip())
        if match is None or (match.group(1) == "" and match.group(2) == ""):
            raise ApiError(416, "Request range not satisfiable", "requestedRangeNotSatisfiable")
        if match.group(1) == "":
            start = max(0, size - int(match.group(2)))
        else:
            start = int(match.group(1))
            end = min(size, int(match.group(2)) + 1) if match.group(2) else size
        if start >= size and size > 0:
            raise ApiError(416, "Request range not satisfiable", "requestedRangeNotSatisfiable")
        status = 206
        headers.append(("Content-Range", f"bytes {start}-{max(start, end - 1)}/{size}"))
    headers.append(("ETag", f'"{ctx.store.md5_of(rec)}"'))
    return ApiResponse(status, rec.mime, content.iter_range(start, end), end - start, headers)


def files_export(ctx: Ctx) -> ApiResponse:
    require_scope(ctx.caller, DRIVE_CONTENT_SCOPES)
    rec = _visible_file(ctx, needs_all_drives_flag=False)
    target = ctx.request.param("mimeType")
    if not target:
        raise required_parameter("mimeType")
    formats = EXPORT_FORMATS.get(rec.mime)
    if formats is None:
        raise ApiError(
            403, "Export only supports Docs Editors files.", "fileNotExportable", location="fileId"
        )
    if target not in formats:
        raise ApiError(400, "The requested conversion is not supported.", "badRequest", location="convertTo")
    # Decided from the declared size: the refusal never builds the oversized export.
    if rec.export_size > EXPORT_LIMIT:
        raise ApiError(403, "This file is too large to be exported.", "exportSizeLimitExceeded")
    key = f"{rec.id}:{rec.version}"
    if target in ("text/plain", "text/markdown"):
        length, chunks = text_export(key, rec.name, rec.export_size)
        return ApiResponse(200, f"{target}; charset=utf-8", chunks, length)
    if target in ("text/csv", "text/tab-separated-values"):
        length, chunks = text_export(key, rec.name, rec.export_size, csv=True)
        if target == "text/tab-separated-values":
            chunks = (chunk.replace(b",", b"\t") for chunk in chunks)
        return ApiResponse(200, f"{target}; charset=utf-8", chunks, length)
    if target == "text/html":
        return _html_export(key, rec)
    if target == "application/pdf":
        lines = sentences(random.Random(key), 30)
        return bytes_response(minimal_pdf(rec.name, lines), target)
    placeholder = BinaryContent(target, max(1024, rec.export_size // 2), key + ":" + target)
    return ApiResponse(200, target, placeholder.iter_range(), placeholder.size)


def _html_export(key: str, rec: DriveFile) -> ApiResponse:
    head = b'<html><head><meta charset="utf-8"></head><body><pre>'
    tail = b"</pre></body></html>"
    length, chunks = text_export(key, rec.name, rec.export_size)

    def body() -> Iterator[bytes]:
        yield head
        yield from chunks
        yield tail

    return ApiResponse(200, "text/html; charset=utf-8", body(), length + len(head) + len(tail))


def changes_start_page_token(ctx: Ctx) -> ApiResponse:
    require_scope(ctx.caller, DRIVE_SCOPES)
    mask = ctx.request.field_mask("drive.v3", "StartPageToken")
    _shared_drive_param(ctx)
    return json_response(
        {"kind": "drive#startPageToken", "startPageToken": ctx.store.start_page_token()}, mask
    )


def _whole_file_selected(mask: FieldMask) -> bool:
    if not mask.selects("changes"):
        return False
    sub = mask.sub("changes")
    return sub is None or (sub.selects("file") and sub.sub("file") is None)


def changes_list(ctx: Ctx) -> ApiResponse:
    req, store = ctx.request, ctx.store
    require_scope(ctx.caller, DRIVE_SCOPES)
    token = req.param("pageToken")
    if not token:
        raise required_parameter("pageToken")
    if not token.isdigit() or not 1 <= int(token) <= len(store.log) + 1:
        raise invalid_parameter("pageToken")
    explicit = req.field_mask("drive.v3", "ChangeList")
    mask = explicit or _DEFAULT_CHANGES_FIELDS
    page_size = req.int_param("pageSize", 100, minimum=1, maximum=1000, strict=ctx.strict)
    if explicit is not None and _whole_file_selected(explicit):
        page_size = min(page_size, FULL_FILE_CHANGES_PAGE_CAP)
    _, include_all = _all_drives(ctx)
    drive_id = _shared_drive_param(ctx)
    include_removed = req.bool_param("includeRemoved", True)
    restrict = req.bool_param("restrictToMyDrive")

    def keep(rec: DriveFile) -> bool:
        if drive_id is not None:
            in_scope = rec.drive_id == drive_id
        else:
            in_scope = rec.drive_id is None or (include_all and not restrict)
        return in_scope and (include_removed or rec.state == ACTIVE)

    log = store.log
    size = len(log)
    found: list[DriveFile] = []
    pos = int(token) - 1
    # A log slot counts only if it still holds the file's latest change (Drive keeps one per file).
    while pos < size and len(found) < page_size:
        rec = log[pos]
        pos += 1
        if rec.change_id == pos and keep(rec):
            found.append(rec)
    while pos < size and not (log[pos].change_id == pos + 1 and keep(log[pos])):
        pos += 1

    body: dict[str, Any] = {"kind": "drive#changeList"}
    if pos < size:
        body["nextPageToken"] = str(pos + 1)
    else:
        body["newStartPageToken"] = str(size + 1)
    if mask.selects("changes"):
        change_mask = mask.sub("changes")
        file_mask = (
            change_mask.sub("file") if change_mask is not None and change_mask.selects("file") else None
        )
        projection = store.projection(file_mask)
        changes = [_change_json(store, rec, projection) for rec in found]
        # The file objects are already projected; mask the rest of each change around them.
        body["changes"] = (
            changes
            if change_mask is None
            else [change_mask.apply(c, prebuilt=frozenset({"file"})) for c in changes]
        )
    return json_response(mask.apply(body, prebuilt=PREBUILT_CHANGES))


def _change_json(store: DriveStore, rec: DriveFile, projection: Projection) -> dict[str, Any]:
    removed = rec.state != ACTIVE
    out: dict[str, Any] = {"kind": "drive#change", "removed": removed}
    if not removed:
        out["file"] = store.render(rec, projection)
    out["fileId"] = rec.id
    out["time"] = rfc3339(rec.change_ms)
    if rec.drive_id:
        out["driveId"] = rec.drive_id
        out["teamDriveId"] = rec.drive_id
    out["type"] = "file"
    out["changeType"] = "file"
    return out


def _json_body(ctx: Ctx) -> dict[str, Any]:
    try:
        body = json.loads(ctx.request.body or b"{}")
    except ValueError:
        raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received.", "parseError")
    return body


def changes_watch(ctx: Ctx) -> ApiResponse:
    """A web_hook channel on the changes feed from ``pageToken`` (emulator/push.py sends)."""
    require_scope(ctx.caller, DRIVE_SCOPES)
    token = ctx.request.param("pageToken")
    if not token:
        raise required_parameter("pageToken")
    drive_id = _shared_drive_param(ctx)
    return json_response(ctx.store.push.drive_watch(ctx.caller.email, _json_body(ctx), drive_id))


def channels_stop(ctx: Ctx) -> ApiResponse:
    require_scope(ctx.caller, DRIVE_SCOPES)
    ctx.store.push.stop(ctx.caller.email, _json_body(ctx))
    return bytes_response(b"", "text/html", status=204)


def drives_list(ctx: Ctx) -> ApiResponse:
    require_scope(ctx.caller, DRIVE_SCOPES)
    mask = ctx.request.field_mask("drive.v3", "DriveList")
    ctx.request.int_param("pageSize", 10, minimum=1, maximum=100, strict=ctx.strict)
    drives = [
        {"kind": "drive#drive", "id": d.id, "name": d.name, "createdTime": rfc3339(d.created_ms)}
        for d in ctx.store.shared_drives
    ]
    return json_response({"kind": "drive#driveList", "drives": drives}, mask)


def about_get(ctx: Ctx) -> ApiResponse:
    """about.get: Google answers 400 without a ``fields`` selector."""
    require_scope(ctx.caller, DRIVE_SCOPES)
    mask = ctx.request.field_mask("drive.v3", "About")
    if mask is None:
        raise required_parameter("fields")
    me = ctx.store.me
    user = {
        "kind": "drive#user",
        "displayName": me.name,
        "emailAddress": me.email,
        "permissionId": me.permission_id,
        "me": True,
    }
    return json_response({"kind": "drive#about", "user": user}, mask)


_FILE = r"(?P<fileId>[^/]+)"
ROUTES: tuple[Route, ...] = (
    Route("GET", r"/drive/v3/files", "drive.files.list", files_list),
    Route(
        "GET",
        rf"/drive/v3/files/{_FILE}",
        "drive.files.get",
        files_get,
        media_endpoint="drive.files.get_media",
    ),
    Route("GET", rf"/drive/v3/files/{_FILE}/export", "drive.files.export", files_export),
    Route("GET", rf"/drive/v3/files/{_FILE}/permissions", "drive.permissions.list", permissions_list),
    Route(
        "GET",
        r"/drive/v3/changes/startPageToken",
        "drive.changes.getStartPageToken",
        changes_start_page_token,
    ),
    Route("GET", r"/drive/v3/changes", "drive.changes.list", changes_list),
    Route("GET", r"/drive/v3/drives", "drive.drives.list", drives_list),
    Route("GET", r"/drive/v3/about", "drive.about.get", about_get),
    Route("POST", r"/drive/v3/changes/watch", "drive.changes.watch", changes_watch),
    Route("POST", r"/drive/v3/channels/stop", "drive.channels.stop", channels_stop),
)
