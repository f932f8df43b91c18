"""``monolyth-connectors``: the command line of the connector pipelines."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monolyth_pipelines import settings
from monolyth_pipelines.store.engine import make_engine, redacted_url

PROVIDERS = ("google_drive", "gmail")
KIND_BY_PROVIDER = {"google_drive": "drive_import", "gmail": "gmail_import"}


class CliError(Exception):
    pass


def _engine(args: argparse.Namespace) -> Any:
    return make_engine(args.database_url)


def _check_provider(provider: str) -> None:
    if provider == "gmail" and not settings.gmail_enabled():
        raise CliError(
            f"gmail is behind the feature flag '{settings.FLAG_GMAIL}': "
            f"set MONOLYTH_FEATURE_FLAGS={settings.FLAG_GMAIL} to use it"
        )


def _uuid(text: str, what: str = "an account id (a UUID, as `accounts list` prints)") -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CliError(f"{text!r} is not {what}") from None


def _provider_account(conn: Any, provider: str, account: str) -> uuid.UUID:
    """The id of an existing ``provider`` account, or a clear error."""
    from monolyth_pipelines.store import accounts

    _check_provider(provider)
    account_id = _uuid(account)
    found = accounts.get_account(conn, account_id)
    if found is None or found.provider != provider:
        raise CliError(f"no {provider} account {account_id}")
    return account_id


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
    from monolyth_pipelines.google.credentials import scopes_of
    from monolyth_pipelines.store import accounts, events
    from monolyth_pipelines.store.events import Event

    _check_provider(args.provider)
    try:
        token_json = json.loads(Path(args.token_file).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read the token file {args.token_file}: {exc.__class__.__name__}") from None
    missing = [k for k in ("refresh_token", "client_id", "client_secret") if not token_json.get(k)]
    if missing:
        raise CliError(f"the token file lacks {', '.join(missing)} (an authorized-user JSON is expected)")
    engine = _engine(args)
    with engine.begin() as conn:
        account_id = accounts.create_account(
            conn,
            owner_id=_uuid(args.owner, "an owner id (a UUID)"),
            provider=args.provider,
            token_json=token_json,
        )
        events.log_event(
            conn,
            Event.ACCOUNT_CONNECTED,
            {"provider": args.provider, "account_id": account_id, "scopes": scopes_of(token_json)},
        )
    print(account_id)
    return 0


def _accounts_disconnect(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store import accounts, events
    from monolyth_pipelines.store.events import Event
    from monolyth_pipelines.store.schema import AccountStatus
    from monolyth_pipelines.sync.push import stop_channels

    engine = _engine(args)
    account_id = _uuid(args.account_id)
    # First, while the tokens are still there: Google stops notifying about this account.
    stop_channels(account_id, engine=engine)
    with engine.begin() as conn:
        account = accounts.get_account(conn, account_id)
        if account is None:
            raise CliError(f"no account {account_id}")
        _check_provider(account.provider)
        if account.status == AccountStatus.DISCONNECTED:
            print(f"account {account_id} is already disconnected")
            return 0
        accounts.set_status(conn, account_id, AccountStatus.DISCONNECTED)
        events.log_event(
            conn, Event.ACCOUNT_DISCONNECTED, {"provider": account.provider, "account_id": account_id}
        )
    print(f"account {account_id} disconnected")
    return 0


def _accounts_list(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store import accounts

    visible = PROVIDERS if settings.gmail_enabled() else ("google_drive",)
    with _engine(args).connect() as conn:
        rows = [a for a in accounts.list_accounts(conn, provider=args.provider) if a.provider in visible]
    print(f"{'id':36}  {'provider':12}  {'status':12}  owner")
    for a in rows:
        print(f"{a.id!s:36}  {a.provider:12}  {a.status:12}  {a.owner_id}")
    return 0


# --- sync -----------------------------------------------------------------------------------------
def _sync(args: argparse.Namespace) -> int:
    from monolyth_pipelines.defs.local_run import local_instance, materialize_account
    from monolyth_pipelines.store import jobs
    from monolyth_pipelines.store.files import count_live

    engine = _engine(args)
    with engine.connect() as conn:
        account_id = _provider_account(conn, args.provider, args.account)
    run_config = json.loads(args.config_json) if args.config_json else {}
    # Dagster's step-by-step console log is for debugging; the outcome is printed below.
    run_config.setdefault(
        "loggers", {"console": {"config": {"log_level": "DEBUG" if args.verbose else "WARNING"}}}
    )
    result = materialize_account(
        args.provider,
        account_id,
        instance=local_instance(),
        run_config=run_config,
        database_url=args.database_url,
    )
    run_id = result.dagster_run.run_id
    with engine.connect() as conn:
        job = next((j for j in reversed(jobs.jobs_for_account(conn, account_id)) if j.run_id == run_id), None)
        live = count_live(conn, account_id)
    if job is None:
        print(f"run {run_id} failed before it opened a job: {'ok' if result.success else 'failed'}")
        return 1
    counters = (job.meta_json or {}).get("counters", {})
    print(f"job {job.id} {job.status} (run {run_id}, attempts {job.attempts})")
    if job.last_error:
        print(f"error: {job.last_error}")
    summary = {
        k: counters.get(k)
        for k in (
            "mode",
            "seen",
            "inserted",
            "updated",
            "unchanged",
            "tombstoned",
            "skipped",
            "pages",
            "retries",
        )
    }
    summary["api_calls"] = (job.meta_json or {}).get("api_calls")
    summary["live_items"] = live
    print(json.dumps(summary, sort_keys=True))
    for warning in counters.get("warnings", []):
        print(f"WARNING: {warning}")
    return 0 if result.success and job.status == "completed" else 1


def _sync_request(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store import jobs

    engine = _engine(args)
    with engine.begin() as conn:
        account_id = _provider_account(conn, args.provider, args.account)
        job_id, created = jobs.request_sync(conn, account_id, KIND_BY_PROVIDER[args.provider])
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
    add.add_argument("--provider", required=True, choices=PROVIDERS)
    add.add_argument("--owner", required=True, help="owning org/user UUID")
    add.add_argument("--token-file", required=True, help="authorized-user JSON (token, refresh_token, ...)")
    add.set_defaults(func=_accounts_add)
    disc = acc.add_parser("disconnect", help="mark an account disconnected")
    disc.add_argument("account_id")
    disc.set_defaults(func=_accounts_disconnect)
    lst = acc.add_parser("list", help="list accounts")
    lst.add_argument("--provider", choices=PROVIDERS)
    lst.set_defaults(func=_accounts_list)

    sync = commands.add_parser("sync", help="sync one account now, in this process, through Dagster")
    sync.add_argument("provider", choices=PROVIDERS)
    sync.add_argument("--account", required=True)
    sync.add_argument(
        "--config-json", help='run config, e.g. {"ops": {"google_drive_files": {"config": {...}}}}'
    )
    sync.add_argument("--verbose", action="store_true", help="show Dagster's own run log")
    sync.set_defaults(func=_sync)

    req = commands.add_parser("sync-request", help='insert a pending job, as "Sync now" in the app does')
    req.add_argument("provider", choices=PROVIDERS)
    req.add_argument("--account", required=True)
    req.set_defaults(func=_sync_request)

    demo = commands.add_parser("demo", help="emulator + account + Drive sync, end to end, then a summary")
    demo.add_argument("--files", type=int, default=2000)
    demo.set_defaults(func=_demo)

    from monolyth_pipelines.emulator.cli import add_emulator_commands

    add_emulator_commands(commands)
    from monolyth_pipelines.webhook.cli import add_webhook_commands

    add_webhook_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
