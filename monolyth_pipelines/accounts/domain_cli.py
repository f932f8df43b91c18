"""``accounts connect-domain | sync-domain | rotate-domain-key | domains``: thin wrappers over
accounts/domain.py. The key file is read here and handed on; nothing prints any part of it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from monolyth_pipelines.actions import check_provider
from monolyth_pipelines.cli_common import CliError, engine_for, parse_uuid


def _key_file(path: str) -> dict[str, Any]:
    from monolyth_pipelines.accounts.domain import check_key_file

    try:
        return check_key_file(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read the service-account key file {path}: {exc.__class__.__name__}") from None
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None


def _terminate_with_dagster(run_id: str) -> bool:
    from monolyth_pipelines.defs.local_run import local_instance
    from monolyth_pipelines.defs.run_control import cancel_run

    return cancel_run(local_instance(), run_id)


def _print(result: Any) -> int:
    counts = (
        f"{result.active_users} active user(s): {result.created} account(s) created, "
        f"{result.reconnected} reconnected, {result.disconnected} disconnected; "
        f"{result.google_requests} Google request(s)"
    )
    if result.status == "connected":
        print(f"domain {result.domain_id} connected: {counts}")
        return 0
    print(f"domain {result.domain_id} error: {result.reason}: {result.message}")
    return 1


def connect_domain_command(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.domain import connect_domain

    check_provider(args.provider)
    owner = parse_uuid(args.owner, "an owner id (a UUID)")
    key = _key_file(args.service_account_file)
    try:
        result = connect_domain(
            engine_for(args),
            provider=args.provider,
            owner_id=owner,
            key_info=key,
            admin_email=args.admin_email,
            users_query=args.users_query,
            terminate_run=_terminate_with_dagster,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return _print(result)


def sync_domain_command(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.domain import sync_domain
    from monolyth_pipelines.store import domains

    owner = parse_uuid(args.owner, "an owner id (a UUID)")
    engine = engine_for(args)
    with engine.connect() as conn:
        found = domains.list_domains(conn, owner_id=owner, provider=args.provider)
    if not found:
        raise CliError(f"owner {owner} has no connected domain")
    status = 0
    for row in found:
        check_provider(row.provider)
        print(f"{row.provider} {row.domain}:", end=" ")
        status |= _print(sync_domain(engine, row.id, terminate_run=_terminate_with_dagster))
    return status


def rotate_domain_key_command(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.domain import rotate_domain_key

    key = _key_file(args.service_account_file)
    try:
        result = rotate_domain_key(
            engine_for(args),
            parse_uuid(args.domain_id, "a domain id (a UUID, as `accounts domains` prints)"),
            key,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return _print(result)


def domains_command(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store import domains

    with engine_for(args).connect() as conn:
        found = domains.list_domains(conn)
    print(f"{'id':36}  {'provider':12}  {'status':10}  {'owner':36}  domain / admin / client id / reason")
    for d in found:
        detail = f"{d.domain} {d.admin_email} {d.client_id}"
        if d.status_reason:
            detail += f" {d.status_reason}: {d.status_message or ''}"
        print(f"{d.id!s:36}  {d.provider:12}  {d.status:10}  {d.owner_id!s:36}  {detail}")
    return 0


def add_domain_commands(acc: Any, provider_names: list[str]) -> None:
    con = acc.add_parser(
        "connect-domain",
        help="connect every user of a Workspace domain (service account, domain-wide delegation)",
    )
    con.add_argument("--provider", required=True, choices=provider_names)
    con.add_argument("--owner", required=True, help="owning org UUID")
    con.add_argument("--service-account-file", required=True, help="the service account's JSON key file")
    con.add_argument("--admin-email", required=True, help="a super admin of the domain (lists its users)")
    con.add_argument("--users-query", help="Directory API users.list query, e.g. 'orgUnitPath=/Sales'")
    con.set_defaults(func=connect_domain_command)
    syn = acc.add_parser(
        "sync-domain", help="re-list the directory: new users connect, departed users disconnect"
    )
    syn.add_argument("--owner", required=True, help="owning org UUID")
    syn.add_argument("--provider", choices=provider_names, help="only this provider's domain")
    syn.set_defaults(func=sync_domain_command)
    rot = acc.add_parser("rotate-domain-key", help="replace a domain's stored service-account key")
    rot.add_argument("domain_id")
    rot.add_argument("--service-account-file", required=True, help="the new JSON key file")
    rot.set_defaults(func=rotate_domain_key_command)
    acc.add_parser("domains", help="list connected Workspace domains").set_defaults(func=domains_command)
