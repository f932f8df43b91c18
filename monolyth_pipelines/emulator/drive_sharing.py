"""Who can see a file in the emulated Drive: permissions as Drive v3 renders them, and
``permissions.list``.

A file's grants are its owner (My Drive) plus ``DriveFile.shares``, tuples
``(type, role, email_or_domain, allowFileDiscovery)`` kept only for files that have any; a
shared-drive item inherits its drive's ``members`` on top of its own shares. As on Google,
``files.list`` / ``files.get`` / ``changes.list`` carry ``permissions`` only when the user may
share the file, and never for items in shared drives (``permissions.list`` gives those, with
``supportsAllDrives``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from monolyth_pipelines.emulator.calls import ApiResponse, json_response
from monolyth_pipelines.emulator.errors import ApiError, invalid_parameter, not_found
from monolyth_pipelines.emulator.fields import Tree, apply_tree
from monolyth_pipelines.emulator.oauth import DRIVE_SCOPES, require_scope

if TYPE_CHECKING:
    from monolyth_pipelines.emulator.calls import CallContext
    from monolyth_pipelines.emulator.drive import DriveFile, DriveStore

Grant = tuple[str, str, str, bool]  # (type, role, email or domain ("" for anyone), discoverable)
TYPES = frozenset({"user", "group", "domain", "anyone"})
ROLES = frozenset({"owner", "organizer", "fileOrganizer", "writer", "commenter", "reader"})
SHARING_ROLES = frozenset({"owner", "organizer", "fileOrganizer", "writer"})
LIST_PAGE_MAX = 100


def grant(kind: str, role: str, who: str = "", discoverable: bool = False) -> Grant:
    """A checked grant (ValueError when Drive would refuse it)."""
    if kind not in TYPES:
        raise ValueError(f"type must be one of {sorted(TYPES)}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}")
    if kind in ("user", "group") and "@" not in who:
        raise ValueError(f"a {kind} permission needs an email address")
    if kind == "domain" and not who:
        raise ValueError("a domain permission needs a domain")
    if kind == "anyone":
        who = ""
    return (kind, role, who.lower(), bool(discoverable) and kind in ("domain", "anyone"))


def _permission_id(kind: str, who: str, discoverable: bool) -> str:
    if kind == "anyone":
        return "anyone" if discoverable else "anyoneWithLink"
    return str(int(hashlib.sha1(f"{kind}:{who}".encode()).hexdigest()[:15], 16))


def _permission(g: Grant, inherited_from: str | None, names: dict[str, str]) -> dict[str, Any]:
    kind, role, who, discoverable = g
    out: dict[str, Any] = {"kind": "drive#permission", "id": _permission_id(kind, who, discoverable)}
    out["type"] = kind
    if kind in ("user", "group"):
        out["emailAddress"] = who
        out["displayName"] = names.get(who, who.split("@")[0])
    elif kind == "domain":
        out["domain"] = who
        out["displayName"] = who
    out["role"] = role
    if kind in ("domain", "anyone"):
        out["allowFileDiscovery"] = discoverable
    if kind in ("user", "group"):
        out["deleted"] = False
        if kind == "user":
            out["pendingOwner"] = False
    detail: dict[str, Any] = {
        "permissionType": "member" if inherited_from else "file",
        "role": role,
        "inherited": inherited_from is not None,
    }
    if inherited_from:
        detail["inheritedFrom"] = inherited_from
    out["permissionDetails"] = [detail]
    return out


def grants_of(store: DriveStore, rec: DriveFile) -> list[tuple[Grant, str | None]]:
    """Every grant on the file and where it is inherited from (None: directly on the file)."""
    out: list[tuple[Grant, str | None]] = []
    if rec.owner >= 0:
        out.append((("user", "owner", store.people[rec.owner].email, False), None))
    if rec.drive_id is not None:
        drive = next((d for d in store.shared_drives if d.id == rec.drive_id), None)
        if drive is not None:
            out += [(member, drive.id) for member in drive.members]
    out += [(g, None) for g in rec.shares or ()]
    return out


def permissions_json(store: DriveStore, rec: DriveFile) -> list[dict[str, Any]]:
    names = {p.email: p.name for p in store.people}
    return [_permission(g, source, names) for g, source in grants_of(store, rec)]


def my_role(store: DriveStore, rec: DriveFile) -> str | None:
    me = store.me.email
    roles = [g[1] for g, _ in grants_of(store, rec) if g[0] == "user" and g[2] == me]
    return roles[0] if roles else None


def can_share(store: DriveStore, rec: DriveFile) -> bool:
    return rec.owner == 0 or my_role(store, rec) in SHARING_ROLES


def masked_permissions(subtree: Tree | None, missing: Any) -> Callable[[DriveStore, DriveFile], Any]:
    """The File's ``permissions`` getter for one page's field mask: absent for shared-drive items
    and for files the user cannot share; each distinct grant rendered and masked once."""
    memo: dict[tuple[Grant, str | None], Any] = {}

    def permissions(store: DriveStore, rec: DriveFile) -> Any:
        if rec.drive_id is not None or not can_share(store, rec):
            return missing
        out = []
        for g, source in grants_of(store, rec):
            found = memo.get((g, source))
            if found is None:
                names = {p.email: p.name for p in store.people}
                found = memo[(g, source)] = apply_tree(_permission(g, source, names), subtree)
            out.append(found)
        return out

    return permissions


def permissions_list(ctx: CallContext[DriveStore]) -> ApiResponse:
    from monolyth_pipelines.emulator.drive import ACTIVE

    req, store = ctx.request, ctx.store
    require_scope(ctx.caller, DRIVE_SCOPES)
    file_id = req.path_params["fileId"]
    supports = req.bool_param("supportsAllDrives") or req.bool_param("supportsTeamDrives")
    rec = store.by_id.get(file_id)
    if rec is None or rec.state != ACTIVE or (rec.drive_id is not None and not supports):
        raise not_found(f"File not found: {file_id}.", location="fileId")
    if rec.drive_id is None and not can_share(store, rec):
        raise ApiError(
            403,
            "The user does not have sufficient permissions for this file.",
            "insufficientFilePermissions",
        )
    mask = req.field_mask("drive.v3", "PermissionList")
    every = permissions_json(store, rec)
    # Unset: at most 100 in shared drives, the whole list elsewhere (the discovery document).
    if req.param("pageSize") is None:
        page_size = LIST_PAGE_MAX if rec.drive_id is not None else max(1, len(every))
    else:
        page_size = req.int_param(
            "pageSize", LIST_PAGE_MAX, minimum=1, maximum=LIST_PAGE_MAX, strict=ctx.strict
        )
    token = req.param("pageToken")
    if token is not None and (not token.isdigit() or int(token) > len(every)):
        raise invalid_parameter("pageToken")
    start = int(token) if token else 0
    body: dict[str, Any] = {"kind": "drive#permissionList"}
    if start + page_size < len(every):
        body["nextPageToken"] = str(start + page_size)
    body["permissions"] = every[start : start + page_size]
    return json_response(body, mask)
