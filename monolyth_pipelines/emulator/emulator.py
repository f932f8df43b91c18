"""``GoogleEmulator``: accounts, their Drive and mailbox, faults, quotas, stats, and the server.

Everything a test or the demo touches goes through this facade; ``docs/emulator.md`` describes it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.oauth2.credentials import Credentials

from monolyth_pipelines.emulator.corpus import build_drive, build_mailbox
from monolyth_pipelines.emulator.directory import Domain, Workspace
from monolyth_pipelines.emulator.drive import ACTIVE, DriveStore, person_for
from monolyth_pipelines.emulator.faults import Faults, Quotas
from monolyth_pipelines.emulator.gmail import Mailbox
from monolyth_pipelines.emulator.oauth import DEFAULT_SCOPES, OAuthServer
from monolyth_pipelines.emulator.paging import TokenCodec
from monolyth_pipelines.emulator.push import PushHub
from monolyth_pipelines.emulator.server import Dispatcher, EmulatorServer
from monolyth_pipelines.emulator.service_accounts import ServiceAccounts
from monolyth_pipelines.emulator.stats import Stats

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True)
class EmulatedAccount:
    """One Google account of the emulator (a handle: state lives in the emulator)."""

    email: str
    display_name: str
    scopes: tuple[str, ...]
    _emulator: GoogleEmulator = field(repr=False, compare=False)

    @property
    def client_id(self) -> str:
        return self._emulator.oauth.grant(self.email).client_id

    def authorized_user_info(self, token_uri: str | None = None) -> dict[str, Any]:
        """An authorized-user dict (``Credentials.from_authorized_user_info`` shape) with a valid token.

        ``token_uri`` defaults to the running server's ``/token`` (Google's, if not serving).
        Note google-auth ignores ``token_uri`` in this dict; build Credentials with it explicitly
        (``credentials()`` does) or call ``.with_token_uri()``.
        """
        emu = self._emulator
        grant = emu.oauth.grant(self.email)
        token, expires_at = emu.oauth.current_token(self.email)
        expiry = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "token": token,
            "refresh_token": grant.refresh_token,
            "client_id": grant.client_id,
            "client_secret": grant.client_secret,
            "scopes": list(grant.scopes),
            "expiry": expiry,
            "token_uri": token_uri or emu.token_uri,
            "universe_domain": "googleapis.com",
            "account": "",
        }

    def credentials(self, token_uri: str | None = None) -> Credentials:
        """``google.oauth2.credentials.Credentials`` pointing at the emulator's token endpoint."""
        info = self.authorized_user_info(token_uri)
        return Credentials.from_authorized_user_info(info, info["scopes"]).with_token_uri(info["token_uri"])


@dataclass
class AccountState:
    account: EmulatedAccount
    drive: DriveStore
    gmail: Mailbox


class GoogleEmulator:
    """Drive v3, Gmail v1 and OAuth for any number of accounts, deterministic from ``seed``.

    ``history_retention``: how many Gmail history records each mailbox keeps (None: all);
    a ``startHistoryId`` older than the kept window answers 404.
    ``strict_limits``: refuse page sizes over the documented maximum with 400 (Google coerces them).
    ``clock``: wall-clock seconds, for token expiry, mutation times and quota windows.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        access_token_lifetime: float = 3600.0,
        history_retention: int | None = None,
        strict_limits: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed = seed
        self.history_retention = history_retention
        self.strict_limits = strict_limits
        self.clock = clock
        self.lock = threading.RLock()
        self.oauth = OAuthServer(clock, access_token_lifetime)
        self.faults = Faults(seed)
        self.quotas = Quotas(clock)
        self.stats_store = Stats()
        self.codec = TokenCodec(hashlib.sha256(f"page-tokens:{seed}".encode()).digest())
        self._accounts: dict[str, AccountState] = {}
        # Workspace domains (Directory API) and service accounts (JWT-bearer grant): a directory
        # user gets a Drive and mailbox of the domain's corpus size when added.
        self.workspace = Workspace(self._directory_user_added)
        self.service_accounts = ServiceAccounts(
            self.workspace, clock, self.oauth.issue, lambda: self.oauth.lifetime
        )
        self._domain_corpus: dict[str, tuple[int, int]] = {}
        # Drive channels and Gmail watches; their notifications go out over HTTP (emulator/push.py).
        self.push = PushHub(
            clock, history_of=lambda email: self.account_state(email).gmail.history_id, seed=seed
        )
        self._dispatcher = Dispatcher(self)
        self._server: EmulatorServer | None = None

    # --- accounts ---------------------------------------------------------------------------------

    def add_account(
        self,
        email: str,
        *,
        drive_files: int = 0,
        gmail_threads: int = 0,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        display_name: str | None = None,
    ) -> EmulatedAccount:
        """Create an account with a generated Drive of ``drive_files`` and ``gmail_threads`` threads."""
        with self.lock:
            if email in self._accounts:
                raise ValueError(f"account exists: {email}")
            name = display_name or email.split("@")[0].replace(".", " ").title()
            seed_key = f"{self.seed}:{email}"
            person = person_for(email, name)
            drive = DriveStore(person, seed_key=seed_key, lock=self.lock, clock=self.clock)
            build_drive(drive, drive_files, seed_key)
            mailbox = Mailbox(
                email,
                name,
                seed_key=seed_key,
                lock=self.lock,
                clock=self.clock,
                retention=self.history_retention,
            )
            build_mailbox(mailbox, gmail_threads, seed_key)
            # Set after the corpus is built: generating it is not a change anyone is told about.
            drive.push = mailbox.push = self.push
            self.oauth.register(email, scopes)
            account = EmulatedAccount(email, name, tuple(scopes), self)
            self._accounts[email] = AccountState(account, drive, mailbox)
            return account

    # --- Workspace domains and service accounts -----------------------------------------------------

    def add_domain(
        self, name: str, *, users: int = 0, admin: str = "admin", drive_files: int = 0, gmail_threads: int = 0
    ) -> Domain:
        """A Workspace domain: ``admin@name`` (a super admin) and ``user1..userN@name``, each with
        ``drive_files`` files and ``gmail_threads`` threads. ``workspace`` adds, suspends, deletes."""
        self._domain_corpus[name] = (drive_files, gmail_threads)
        domain = self.workspace.add_domain(name, admin=admin)
        self.workspace.add_users(name, users)
        return domain

    def service_account_key(
        self, name: str = "monolyth-sync", *, delegate_to: str | None = None, scopes: Sequence[str] = ()
    ) -> dict[str, Any]:
        """A new JSON key file of service account ``name``; with ``delegate_to``, that domain's admin
        authorises the account's client id for ``scopes`` (domain-wide delegation)."""
        account = self.service_accounts.create(name)
        key = self.service_accounts.create_key(account, self.token_uri)
        if delegate_to is not None:
            self.workspace.delegate(delegate_to, account.client_id, scopes)
        return key

    def _directory_user_added(self, email: str) -> None:
        if email not in self._accounts:
            files, threads = self._domain_corpus.get(email.split("@", 1)[1], (0, 0))
            self.add_account(email, drive_files=files, gmail_threads=threads)

    def account(self, email: str) -> EmulatedAccount:
        return self.account_state(email).account

    def account_state(self, email: str) -> AccountState:
        state = self._accounts.get(email)
        if state is None:
            raise KeyError(f"no such account: {email}")
        return state

    @property
    def accounts(self) -> list[EmulatedAccount]:
        return [state.account for state in self._accounts.values()]

    def drive(self, account: EmulatedAccount | str) -> DriveStore:
        """The account's Drive: mutations (create_file, trash, ...) and reads (files, file, ...)."""
        return self.account_state(_email(account)).drive

    def gmail(self, account: EmulatedAccount | str) -> Mailbox:
        """The account's mailbox: mutations (deliver, relabel, ...) and reads (thread, message, ...)."""
        return self.account_state(_email(account)).gmail

    def account_summary(self, account: EmulatedAccount | str) -> dict[str, Any]:
        state = self.account_state(_email(account))
        with self.lock:
            return {
                "email": state.account.email,
                "drive_files": sum(1 for f in state.drive.records if f.state == ACTIVE),
                "gmail_threads": sum(1 for t in state.gmail.threads.values() if t.live()),
                "start_page_token": state.drive.start_page_token(),
                "history_id": state.gmail.current_history_id(),
            }

    # --- credentials ------------------------------------------------------------------------------

    def revoke(self, account: EmulatedAccount | str) -> None:
        """Revoke the refresh token (refresh answers invalid_grant) and all access tokens."""
        self.oauth.revoke(_email(account))

    def reauthorize(self, account: EmulatedAccount | str) -> None:
        """The user connects again: a new refresh token (see ``authorized_user_info``)."""
        self.oauth.reauthorize(_email(account))

    def oauth_client_secrets(self) -> dict[str, Any]:
        """A new app OAuth client, as Google's client_secret.json ("installed") describes it."""
        client = self.oauth.consent.register_client()
        base = self.base_url if self._server is not None else "https://accounts.google.com"
        return {
            "installed": {
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "auth_uri": f"{base}/o/oauth2/auth",
                "token_uri": self.token_uri,
                "redirect_uris": ["http://localhost"],
            }
        }

    def consent_as(self, email: str | None = None, granted_scopes: Sequence[str] | None = None) -> None:
        """Who consents at the authorization endpoint next, granting which scopes (None: all asked)."""
        self.oauth.consent.consent_as(email, granted_scopes)

    def revocations(self) -> list[dict[str, Any]]:
        """Every call to the revocation endpoint: whose grant, which client, whether it was known."""
        return list(self.oauth.consent.revocations)

    def expire_access_tokens(self, account: EmulatedAccount | str) -> None:
        """Every access token of the account expires now; API calls answer 401 until a refresh."""
        self.oauth.expire(_email(account))

    # --- serving ----------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a background thread; returns the base URL (``http://host:port``)."""
        if self._server is not None:
            raise RuntimeError("already serving at " + self._server.base_url)
        self._server = EmulatorServer((host, port), self._dispatcher)
        return self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """``with emu.serve() as base_url:``; the server thread stops on exit."""
        base_url = self.start(host, port)
        try:
            yield base_url
        finally:
            self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("not serving")
        return self._server.base_url

    @property
    def token_uri(self) -> str:
        return f"{self._server.base_url}/token" if self._server is not None else GOOGLE_TOKEN_URI

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Any:
        """Run one HTTP request without a socket (an ``ApiResponse``, or ``DROP``)."""
        return self._dispatcher.handle(method, target, headers, body)

    # --- stats ------------------------------------------------------------------------------------

    def stats(self, account: EmulatedAccount | str) -> dict[str, Any]:
        """Counters of one account (see ``stats.Counters.to_dict``)."""
        return self.stats_store.account(_email(account))

    def stats_total(self) -> dict[str, Any]:
        return self.stats_store.total()

    def stats_snapshot(self) -> dict[str, Any]:
        """``{"total": ..., "accounts": {email: ...}}``, as ``GET /_emulator/stats`` returns."""
        return self.stats_store.snapshot()

    def reset_stats(self, account: EmulatedAccount | str | None = None) -> None:
        """Zero every counter, or only those of ``account``."""
        self.stats_store.reset(None if account is None else _email(account))


def _email(account: EmulatedAccount | str) -> str:
    return account if isinstance(account, str) else account.email
