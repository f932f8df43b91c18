"""``emulator serve``: run the Google API emulator for the demo and benchmarks.

Wired into ``monolyth-connectors`` through ``add_emulator_commands``; also runnable on its own as
``python -m monolyth_pipelines.emulator serve ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monolyth_pipelines.emulator.directory import DIRECTORY_SCOPE
from monolyth_pipelines.emulator.emulator import GoogleEmulator
from monolyth_pipelines.emulator.oauth import DEFAULT_SCOPES

_DESCRIPTION = """\
Serve Drive v3 (/drive/v3/), Gmail v1 (/gmail/v1/), batch (/batch/drive/v3, /batch/gmail/v1),
OAuth (POST /token) and the control API (/_emulator/) on one port, with K seeded accounts
user1@DOMAIN..userK@DOMAIN. Point the connectors at it with
MONOLYTH_GOOGLE_API_ENDPOINT=<base URL> and MONOLYTH_GOOGLE_TOKEN_URI=<base URL>/token.
The accounts' authorized-user JSON (with refresh tokens and client secrets) is written only to
--accounts-file / --accounts-dir (mode 0600), never printed."""


def add_emulator_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``emulator serve`` to a CLI; the parsed namespace's ``func(args)`` runs it (exit code)."""
    emulator = subparsers.add_parser("emulator", help="Google API emulator (Drive v3, Gmail v1, OAuth)")
    commands = emulator.add_subparsers(dest="emulator_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the emulator until interrupted",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    serve.add_argument("--accounts", type=int, default=1, metavar="K", help="seeded accounts (default 1)")
    serve.add_argument("--domain", default="example.com", help="their email domain (default example.com)")
    serve.add_argument(
        "--drive-files", type=int, default=200, metavar="N", help="Drive files each (default 200)"
    )
    serve.add_argument(
        "--gmail-threads", type=int, default=50, metavar="M", help="Gmail threads each (default 50)"
    )
    serve.add_argument(
        "--scopes", default=",".join(DEFAULT_SCOPES), help="comma-separated OAuth scopes granted"
    )
    serve.add_argument("--accounts-file", type=Path, help="write every account's authorized-user JSON here")
    serve.add_argument("--accounts-dir", type=Path, help="write one authorized-user JSON per account here")
    serve.add_argument(
        "--token-lifetime",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="access token lifetime (default 3600)",
    )
    serve.add_argument(
        "--history-retention",
        type=int,
        metavar="N",
        help="Gmail history records kept per mailbox (default: all)",
    )
    serve.add_argument(
        "--strict-limits",
        action="store_true",
        help="refuse over-maximum page sizes with 400 instead of coercing them",
    )
    serve.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        metavar="R",
        help="fraction of API calls answering an error (seeded)",
    )
    serve.add_argument(
        "--error-statuses", default="503,429", help="statuses for --error-rate (default 503,429)"
    )
    serve.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every API call")
    serve.add_argument(
        "--drive-requests-per-minute",
        type=float,
        metavar="N",
        help="enforce a per-user Drive quota (403 userRateLimitExceeded)",
    )
    serve.add_argument(
        "--gmail-units-per-second",
        type=float,
        metavar="U",
        help="enforce a per-user Gmail quota in units/s (429 rateLimitExceeded)",
    )
    serve.add_argument(
        "--workspace-users",
        type=int,
        default=0,
        metavar="N",
        help="also a Workspace domain: admin@DOMAIN and user1..userN@DOMAIN (Directory API, delegation)",
    )
    serve.add_argument(
        "--workspace-domain", default="workspace.test", help="its name (default workspace.test)"
    )
    serve.add_argument(
        "--service-account-file",
        type=Path,
        help="write a service-account JSON key here (mode 0600), delegated --scopes + the Directory scope",
    )
    serve.set_defaults(func=run_serve)


def build_emulator(args: argparse.Namespace) -> GoogleEmulator:
    emu = GoogleEmulator(
        seed=args.seed,
        access_token_lifetime=args.token_lifetime,
        history_retention=args.history_retention,
        strict_limits=args.strict_limits,
    )
    scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
    for number in range(1, args.accounts + 1):
        emu.add_account(
            f"user{number}@{args.domain}",
            drive_files=args.drive_files,
            gmail_threads=args.gmail_threads,
            scopes=scopes,
        )
    if args.workspace_users:
        emu.add_domain(
            args.workspace_domain,
            users=args.workspace_users,
            drive_files=args.drive_files,
            gmail_threads=args.gmail_threads,
        )
    if args.error_rate:
        statuses = [int(code) for code in args.error_statuses.split(",") if code.strip()]
        emu.faults.error_rate(args.error_rate, statuses=statuses)
    if args.latency_ms:
        emu.faults.latency(args.latency_ms / 1000)
    emu.quotas.configure(
        drive_requests_per_minute=args.drive_requests_per_minute,
        gmail_units_per_second=args.gmail_units_per_second,
    )
    return emu


def _write_private(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def write_accounts(emu: GoogleEmulator, accounts_file: Path | None, accounts_dir: Path | None) -> None:
    token_uri = emu.token_uri
    infos = [(account.email, account.authorized_user_info(token_uri)) for account in emu.accounts]
    if accounts_file is not None:
        _write_private(
            accounts_file,
            {
                "base_url": emu.base_url,
                "token_uri": token_uri,
                "accounts": [{"email": email, "authorized_user": info} for email, info in infos],
            },
        )
    if accounts_dir is not None:
        for email, info in infos:
            _write_private(accounts_dir / f"{email}.json", info)


def run_serve(args: argparse.Namespace) -> int:
    emu = build_emulator(args)
    base_url = emu.start(args.host, args.port)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        write_accounts(emu, args.accounts_file, args.accounts_dir)
        print(f"Google API emulator serving at {base_url}", flush=True)
        print(f"MONOLYTH_GOOGLE_API_ENDPOINT={base_url}")
        print(f"MONOLYTH_GOOGLE_TOKEN_URI={base_url}/token")
        for account in emu.accounts:
            if not account.email.endswith("@" + args.workspace_domain):
                print(f"account {account.email}")
        if args.workspace_users:
            print(
                f"workspace domain {args.workspace_domain}: admin@{args.workspace_domain} "
                f"and {args.workspace_users} users"
            )
        if args.service_account_file:
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()] + [DIRECTORY_SCOPE]
            delegate = args.workspace_domain if args.workspace_users else None
            _write_private(
                args.service_account_file, emu.service_account_key(delegate_to=delegate, scopes=scopes)
            )
            print(f"service-account key: {args.service_account_file}")
        if args.accounts_file:
            print(f"authorized-user JSON: {args.accounts_file}")
        if args.accounts_dir:
            print(f"authorized-user JSON files: {args.accounts_dir}/")
        sys.stdout.flush()
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monolyth_pipelines.emulator")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_emulator_commands(subparsers)
    # Standalone, "emulator" is implied: accept both "serve ..." and "emulator serve ...".
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["emulator"]:
        argv = ["emulator", *argv]
    args = parser.parse_args(argv)
    return int(args.func(args))
