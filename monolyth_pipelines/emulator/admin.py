"""``/_emulator/``: the Python control API over HTTP, for an emulator served by the CLI.

Not part of any Google API and unauthenticated (the emulator is a local test tool). Mutations
take the keyword arguments of the matching Python method as a JSON object, e.g.
``POST /_emulator/accounts/alice@example.com/drive/trash {"file_id": "..."}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from monolyth_pipelines.emulator import workspace_admin
from monolyth_pipelines.emulator.calls import ApiResponse, json_response

if TYPE_CHECKING:
    from monolyth_pipelines.emulator.emulator import GoogleEmulator

PREFIX = "/_emulator/"
DRIVE_OPS = frozenset(
    {
        "create_file",
        "modify",
        "rename",
        "trash",
        "untrash",
        "delete",
        "lose_access",
        "restore_access",
        "share",
        "unshare",
        "make_private",
    }
)
GMAIL_OPS = frozenset(
    {"deliver", "delete_message", "delete_thread", "relabel", "create_label", "expire_history"}
)
FAULT_KINDS = frozenset({"script", "error_rate", "latency", "drop"})


class _AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle(emu: GoogleEmulator, method: str, target: str, body: bytes) -> ApiResponse:
    url = urlsplit(target)
    parts = [unquote(p) for p in url.path[len(PREFIX) :].strip("/").split("/") if p]
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    try:
        payload = json.loads(body) if body.strip() else {}
        if not isinstance(payload, dict):
            raise _AdminError(400, "the body must be a JSON object")
        return json_response(_route(emu, method, parts, query, payload))
    except _AdminError as exc:
        return json_response({"error": str(exc)}, status=exc.status)
    except KeyError as exc:
        return json_response({"error": str(exc.args[0]) if exc.args else "not found"}, status=404)
    except (TypeError, ValueError) as exc:
        return json_response({"error": str(exc)}, status=400)


def _route(
    emu: GoogleEmulator, method: str, parts: list[str], query: dict[str, str], payload: dict[str, Any]
) -> Any:
    head = parts[0] if parts else ""
    if head == "stats":
        if method == "POST" and parts[1:] == ["reset"]:
            emu.reset_stats()
            return {"reset": True}
        return emu.stats_snapshot()
    if head == "faults":
        return _faults(emu, method, payload)
    if head == "quotas":
        if method == "POST":
            emu.quotas.configure(**payload)
        elif method == "DELETE":
            emu.quotas.disable()
        return emu.quotas.describe()
    if head == "accounts":
        return _accounts(emu, method, parts[1:], query, payload)
    if head == "oauth":
        return _oauth(emu, method, parts[1:], payload)
    if head == "workspace":
        return workspace_admin.workspace(emu, method, parts[1:], payload)
    if head == "service_accounts":
        return workspace_admin.service_accounts(emu, method, parts[1:], payload)
    if head == "push":
        # Pub/Sub push subscriptions (what an operator sets up in the Cloud console) and channel
        # expiry on demand; GET lists channels, watches and subscriptions.
        if method == "POST" and parts[1:] == ["subscriptions"]:
            emu.push.subscribe(
                payload["topic"],
                payload["push_endpoint"],
                service_account=payload.get("service_account"),
                audience=payload.get("audience"),
            )
        elif method == "POST" and parts[1:] == ["expire"]:
            emu.push.expire(payload["channel_id"])
        return emu.push.describe()
    raise _AdminError(404, f"unknown admin path /{'/'.join(parts)}")


def _oauth(emu: GoogleEmulator, method: str, parts: list[str], payload: dict[str, Any]) -> Any:
    if method == "POST" and parts == ["clients"]:
        return emu.oauth_client_secrets()
    if method == "POST" and parts == ["consent"]:
        emu.oauth.consent.consent_as(**payload)
        plan = emu.oauth.consent.plan
        return {"email": plan.email, "granted_scopes": plan.granted_scopes}
    if method == "GET" and parts == ["revocations"]:
        return emu.revocations()
    raise _AdminError(404, f"unknown admin path /oauth/{'/'.join(parts)}")


def _faults(emu: GoogleEmulator, method: str, payload: dict[str, Any]) -> Any:
    if method == "DELETE":
        emu.faults.clear()
    elif method == "POST":
        kind = payload.pop("kind", None)
        if kind not in FAULT_KINDS:
            raise _AdminError(400, f"kind must be one of {sorted(FAULT_KINDS)}")
        getattr(emu.faults, kind)(**payload)
    return [rule.describe() for rule in emu.faults.rules]


def _accounts(
    emu: GoogleEmulator, method: str, parts: list[str], query: dict[str, str], payload: dict[str, Any]
) -> Any:
    if not parts:
        if method == "POST":
            account = emu.add_account(**payload)
            return {
                "email": account.email,
                "authorized_user": account.authorized_user_info(query.get("token_uri")),
            }
        return [emu.account_summary(a) for a in emu.accounts]
    account = emu.account(parts[0])
    rest = parts[1:]
    if not rest:
        return emu.account_summary(account)
    if rest == ["authorized_user"]:
        return account.authorized_user_info(query.get("token_uri"))
    if method == "POST" and rest == ["revoke"]:
        emu.revoke(account)
        return {"revoked": True}
    if method == "POST" and rest == ["reauthorize"]:
        emu.reauthorize(account)
        return account.authorized_user_info(query.get("token_uri"))
    if method == "POST" and rest == ["expire_tokens"]:
        emu.expire_access_tokens(account)
        return {"expired": True}
    if rest[0] == "drive":
        drive = emu.drive(account)
        if method == "GET" and rest[1:] == ["files"]:
            return drive.files()
        if method == "GET" and len(rest) == 4 and rest[1] == "files" and rest[3] == "permissions":
            return drive.permissions(rest[2])
        if method == "POST" and len(rest) == 2 and rest[1] in DRIVE_OPS:
            return getattr(drive, rest[1])(**payload)
    if rest[0] == "gmail":
        gmail = emu.gmail(account)
        if method == "GET" and rest[1:] == ["threads"]:
            return gmail.threads_list(format=query.get("format", "minimal"))
        if method == "GET" and rest[1:] == ["history"]:
            return gmail.history_records()
        if method == "POST" and len(rest) == 2 and rest[1] in GMAIL_OPS:
            return getattr(gmail, rest[1])(**payload)
    raise _AdminError(404, f"unknown admin path /accounts/{'/'.join(parts)}")
