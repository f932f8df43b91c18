"""``monolyth-connectors``: the command line of the connector pipelines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from monolyth_pipelines import providers
from monolyth_pipelines.actions import ActionError
from monolyth_pipelines.cli_common import CliError
from monolyth_pipelines.cli_common import engine_for as _engine
from monolyth_pipelines.cli_common import parse_uuid as _uuid
from monolyth_pipelines.store.engine import redacted_url
from monolyth_pipelines.store.token_crypto import TokenKeyError


def _provider_names() -> list[str]:
    """Every registered provider: a flagged one is named, and refused with how to enable it."""
    return [spec.provider for spec in providers.all_providers()]


# --- db -------------------------------------------------------------------------------------------
def _db_upgrade(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store.migrate import head_revision, upgrade

    engine = _engine(args)
    before, after = upgrade(engine)
    where = redacted_url(str(engine.url))
    if before == after:
        print(f"schema already at revision {after} on {where}; nothing to do")
    else:
        print(f"schema upgraded from {before or 'empty'} to {after} (head {head_revision()}) on {where}")
    return 0


def _db_sql(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store.ddl import postgres_ddl

    sys.stdout.write(postgres_ddl())
    return 0


# --- accounts -------------------------------------------------------------------------------------
def _accounts_add(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.cli import accounts_add

    return accounts_add(args)


def _accounts_disconnect(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.cli import accounts_disconnect

    return accounts_disconnect(args)


def _accounts_list(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.cli import accounts_list

    return accounts_list(args)


# --- sync -----------------------------------------------------------------------------------------
def _sync(args: argparse.Namespace) -> int:
    from monolyth_pipelines.actions import sync_account

    run_config = json.loads(args.config_json) if args.config_json else {}
    if args.allow_mass_tombstone:
        asset = providers.get(args.provider).asset_name
        ops = run_config.setdefault("ops", {}).setdefault(asset, {})
        ops.setdefault("config", {})["allow_mass_tombstone"] = True
    # Dagster's step-by-step console log (and its stack traces) is for debugging with --verbose;
    # the outcome is printed below.
    run_config.setdefault(
        "loggers", {"console": {"config": {"log_level": "DEBUG" if args.verbose else "CRITICAL"}}}
    )
    account_id = _uuid(args.account)
    outcome = sync_account(
        _engine(args), args.provider, account_id, run_config=run_config, database_url=args.database_url
    )
    for line in outcome.lines():
        print(line)
    if outcome.refusal is not None:
        return outcome.refusal.exit_status  # 3: the account is busy; not a failed sync
    return 0 if outcome.ok else 1


def _sync_request(args: argparse.Namespace) -> int:
    from monolyth_pipelines.actions import provider_account
    from monolyth_pipelines.store import jobs

    engine = _engine(args)
    with engine.begin() as conn:
        account_id = provider_account(conn, args.provider, _uuid(args.account))
        job_id, created = jobs.request_sync(conn, account_id, providers.get(args.provider).kind)
    print(job_id if created else f"{job_id} (already pending or running; this request joined it)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from monolyth_pipelines.demo import run_demo

    return run_demo(files=args.files)


# --- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monolyth-connectors", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL of the app database (default: MONOLYTH_DATABASE_URL, else embedded SQLite)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="the connector schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="create or upgrade the schema (idempotent)").set_defaults(func=_db_upgrade)
    db.add_parser("sql", help="print the Postgres DDL that sql/schema.sql holds").set_defaults(func=_db_sql)

    acc = commands.add_parser("accounts", help="connected accounts").add_subparsers(
        dest="acc_command", required=True
    )
    add = acc.add_parser("add", help="store an account as connected and print its id")
    add.add_argument("--provider", required=True, choices=_provider_names())
    add.add_argument("--owner", required=True, help="owning org/user UUID")
    add.add_argument("--token-file", required=True, help="authorized-user JSON (token, refresh_token, ...)")
    add.set_defaults(func=_accounts_add)
    disc = acc.add_parser("disconnect", help="revoke the grant, forget the tokens, stop syncing")
    disc.add_argument("account_id")
    disc.add_argument("--purge", action="store_true", help="also delete the account's items, cursors, jobs")
    disc.set_defaults(func=_accounts_disconnect)
    lst = acc.add_parser("list", help="list accounts")
    lst.add_argument("--provider", choices=_provider_names())
    lst.set_defaults(func=_accounts_list)
    from monolyth_pipelines.accounts.cli import add_account_commands

    add_account_commands(acc, _provider_names())

    sync = commands.add_parser("sync", help="sync one account now, in this process, through Dagster")
    sync.add_argument("provider", choices=_provider_names())
    sync.add_argument("--account", required=True)
    sync.add_argument(
        "--config-json", help='run config, e.g. {"ops": {"google_drive_files": {"config": {...}}}}'
    )
    sync.add_argument("--verbose", action="store_true", help="show Dagster's own run log")
    sync.add_argument(
        "--allow-mass-tombstone",
        action="store_true",
        help="confirm a run that tombstones more than MONOLYTH_MASS_TOMBSTONE_SHARE of the live rows",
    )
    sync.set_defaults(func=_sync)

    req = commands.add_parser("sync-request", help='insert a pending job, as "Sync now" in the app does')
    req.add_argument("provider", choices=_provider_names())
    req.add_argument("--account", required=True)
    req.set_defaults(func=_sync_request)

    demo = commands.add_parser("demo", help="emulator + account + Drive sync, end to end, then a summary")
    demo.add_argument("--files", type=int, default=2000)
    demo.set_defaults(func=_demo)

    from monolyth_pipelines.emulator.cli import add_emulator_commands

    add_emulator_commands(commands)
    from monolyth_pipelines.insights.cli import add_insights_commands

    add_insights_commands(commands)

    from monolyth_pipelines.webhook.cli import add_webhook_commands

    add_webhook_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, ActionError, TokenKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
