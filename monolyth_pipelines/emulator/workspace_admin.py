"""``/_emulator/workspace/...`` and ``/_emulator/service_accounts/...``: domains, directory users,
delegation and service-account keys over HTTP, for an emulator served by the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monolyth_pipelines.emulator.emulator import GoogleEmulator


def workspace(emu: GoogleEmulator, method: str, parts: list[str], payload: dict[str, Any]) -> Any:
    """POST domains {name, users, admin, drive_files, gmail_threads}; POST users {email, ...};
    POST users/{email} {suspended|archived|deleted|org_unit_path|is_admin}; POST/DELETE
    delegations {domain, client_id, scopes}; GET: every domain."""
    if method == "POST" and parts == ["domains"]:
        emu.add_domain(**payload)
    elif method == "POST" and parts == ["users"]:
        emu.workspace.add_user(**payload)
    elif method == "POST" and len(parts) == 2 and parts[0] == "users":
        return emu.workspace.update_user(parts[1], **payload).resource()
    elif method == "POST" and parts == ["delegations"]:
        emu.workspace.delegate(payload["domain"], payload["client_id"], payload.get("scopes", ()))
    elif method == "DELETE" and parts == ["delegations"]:
        emu.workspace.revoke_delegation(payload["domain"], payload["client_id"])
    elif method != "GET" or parts:
        raise KeyError(f"unknown admin path /workspace/{'/'.join(parts)}")
    return emu.workspace.describe()


def service_accounts(emu: GoogleEmulator, method: str, parts: list[str], payload: dict[str, Any]) -> Any:
    """POST {name, delegate_to, scopes} → a new JSON key file; DELETE {email}/keys/{key_id}."""
    if method == "POST" and not parts:
        return emu.service_account_key(**payload)
    if method == "DELETE" and len(parts) == 3 and parts[1] == "keys":
        emu.service_accounts.delete_key(parts[0], parts[2])
    elif method != "GET" or parts:
        raise KeyError(f"unknown admin path /service_accounts/{'/'.join(parts)}")
    return emu.service_accounts.describe()
