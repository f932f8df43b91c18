"""``monolyth-connectors accounts ...``: thin wrappers over accounts/connect, disconnect and keys."""

from __future__ import annotations

import argparse
import http.server
import json
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monolyth_pipelines import providers, settings
from monolyth_pipelines.actions import check_provider
from monolyth_pipelines.cli_common import CliError, engine_for, parse_uuid

CALLBACK_PAGE = (
    b"<html><body>Monolyth: the account is being connected; you can close this window.</body></html>"
)


def _print_result(result: Any) -> int:
    if result.status == "connected":
        verb = "connected" if result.created else "reconnected (the existing account was updated)"
        print(f"{result.account_id} {verb}: {result.email}, scopes {' '.join(result.scopes)}")
        return 0
    print(f"{result.account_id} error: {result.reason}: {result.message}")
    return 1


# --- add / connect --------------------------------------------------------------------------------
def accounts_add(args: argparse.Namespace) -> int:
    from monolyth_pipelines.actions import connect_account

    try:
        token_info = json.loads(Path(args.token_file).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read the token file {args.token_file}: {exc.__class__.__name__}") from None
    if not isinstance(token_info, dict):
        raise CliError("the token file is not an authorized-user JSON object")
    owner = parse_uuid(args.owner, "an owner id (a UUID)")
    print(connect_account(engine_for(args), provider=args.provider, owner_id=owner, token_json=token_info))
    return 0


class _Callback(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "code" not in query and "error" not in query:
            self.send_response(404)
            self.end_headers()
            return
        self.server.answer = query
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(CALLBACK_PAGE)))
        self.end_headers()
        self.wfile.write(CALLBACK_PAGE)
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: never logged
        pass


class _CallbackServer(http.server.HTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.answer: dict[str, str] = {}
        self.done = threading.Event()


def _pasted_redirect(text: str) -> dict[str, str]:
    # The whole redirect, not a bare code: its state is what proves the code answers this request.
    text = text.strip()
    answer = {k: v[-1] for k, v in parse_qs(urlsplit(text).query or text).items()}
    if "code" not in answer and "error" not in answer:
        raise CliError("paste the whole URL you were redirected to (it holds the code and the state)")
    return answer


def accounts_connect(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts import connect
    from monolyth_pipelines.google import oauth_flow

    check_provider(args.provider)
    owner = parse_uuid(args.owner, "an owner id (a UUID)")
    try:
        client = settings.oauth_client_from_file(Path(args.client_secrets)) if args.client_secrets else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    server = None if args.paste else _CallbackServer(args.port)
    port = server.server_address[1] if server else 1
    redirect_uri = f"http://127.0.0.1:{port}/"
    try:
        request = oauth_flow.authorization_url(
            args.provider, redirect_uri, client=client, login_hint=args.login_hint
        )
        print(f"Open this URL to connect the account:\n{request.url}", flush=True)
        if server is not None:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            if not args.no_browser:
                webbrowser.open(request.url)
            got = server.done.wait(args.timeout)
            server.shutdown()
            if not got:
                raise CliError(f"no redirect within {args.timeout:.0f} s; run the command again")
            answer = server.answer
        else:
            answer = _pasted_redirect(input("Paste the URL you were redirected to: "))
        if "error" in answer:
            raise CliError(f"Google did not grant access: {answer['error']}")
        result = connect.exchange_code(
            engine_for(args),
            provider=args.provider,
            owner_id=owner,
            code=answer["code"],
            redirect_uri=redirect_uri,
            code_verifier=request.code_verifier,
            state=answer.get("state"),
            expected_state=request.state,
            client=client,
        )
    except oauth_flow.OAuthFlowError as exc:
        raise CliError(str(exc)) from None
    finally:
        if server is not None:
            server.server_close()
    return _print_result(result)


# --- list / disconnect ------------------------------------------------------------------------------
def accounts_list(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store import accounts

    visible = {spec.provider for spec in providers.enabled_providers()}
    with engine_for(args).connect() as conn:
        rows = [a for a in accounts.list_accounts(conn, provider=args.provider) if a.provider in visible]
    print(f"{'id':36}  {'provider':12}  {'status':12}  {'owner':36}  google account / reason")
    for a in rows:
        detail = a.external_email or ""
        if a.status_reason:
            detail = f"{detail} {a.status_reason}: {a.status_message or ''}".strip()
        print(f"{a.id!s:36}  {a.provider:12}  {a.status:12}  {a.owner_id!s:36}  {detail}")
    return 0


def _terminate_with_dagster(run_id: str) -> bool:
    from monolyth_pipelines.defs.local_run import local_instance
    from monolyth_pipelines.defs.run_control import cancel_run

    return cancel_run(local_instance(), run_id)


def accounts_disconnect(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.disconnect import AccountNotFound, disconnect
    from monolyth_pipelines.store import accounts

    account_id = parse_uuid(args.account_id)
    engine = engine_for(args)
    with engine.connect() as conn:
        account = accounts.get_account(conn, account_id)
    if account is None:
        raise CliError(f"no account {account_id}")
    check_provider(account.provider)
    try:
        result = disconnect(engine, account_id, purge=args.purge, terminate_run=_terminate_with_dagster)
    except AccountNotFound as exc:
        raise CliError(str(exc)) from None
    if result.revoke_error and not result.already:
        print(f"WARNING: the grant was not revoked at Google: {result.revoke_error}", file=sys.stderr)
    elif result.revoked:
        print("the grant was revoked at Google")
    if result.failed_jobs:
        print(
            f"{len(result.failed_jobs)} open job(s) failed, {len(result.terminated_runs)} run(s) terminated"
        )
    if args.purge:
        print("purged: " + ", ".join(f"{n} {table}" for table, n in sorted(result.purged.items())))
    print(f"account {account_id} {'was already' if result.already else ''} disconnected".replace("  ", " "))
    return 0


# --- keys -----------------------------------------------------------------------------------------
def accounts_keygen(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store.token_crypto import generate_key

    print(generate_key())
    return 0


def accounts_rotate_keys(args: argparse.Namespace) -> int:
    from monolyth_pipelines.accounts.keys import rotate_keys

    result = rotate_keys(engine_for(args), batch_size=args.batch_size)
    print(
        f"re-encrypted {result.rotated} account(s) with the first key; {result.already_current} already "
        f"were; {result.changed_meanwhile} changed meanwhile (written with the first key); "
        f"{result.domain_keys} Workspace domain key(s) re-encrypted"
    )
    return 0


def add_account_commands(acc: Any, provider_names: list[str]) -> None:
    """The subcommands added to ``accounts`` beside add/list/disconnect."""
    con = acc.add_parser("connect", help="connect a Google account with OAuth (consent in a browser)")
    con.add_argument("--provider", required=True, choices=provider_names)
    con.add_argument("--owner", required=True, help="owning org/user UUID")
    con.add_argument(
        "--client-secrets",
        help="Google's client_secret.json (default: MONOLYTH_GOOGLE_CLIENT_ID/_SECRET or _SECRETS_FILE)",
    )
    con.add_argument("--port", type=int, default=0, help="loopback port for the redirect (default: any)")
    con.add_argument("--paste", action="store_true", help="no loopback server: paste the URL of the redirect")
    con.add_argument("--no-browser", action="store_true", help="only print the consent URL")
    con.add_argument("--login-hint", help="the Google address to preselect on the consent page")
    con.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the redirect")
    con.set_defaults(func=accounts_connect)
    acc.add_parser("keygen", help="print a new key for MONOLYTH_TOKEN_KEYS").set_defaults(
        func=accounts_keygen
    )
    rot = acc.add_parser("rotate-keys", help="re-encrypt every stored grant with the first key")
    rot.add_argument("--batch-size", type=int, default=200)
    rot.set_defaults(func=accounts_rotate_keys)
    from monolyth_pipelines.accounts.domain_cli import add_domain_commands

    add_domain_commands(acc, provider_names)
