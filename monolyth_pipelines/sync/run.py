"""One sync run of one account, independent of the provider: the connector_jobs row, the
activity events, the counters, the page commits, and the rules for failing honestly.

Drive and Gmail differ only in their fetch loops, which yield ``PageWrite``s; everything a run
records goes through here, and ``SyncRun.commit_page`` is the one place a page is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from monolyth_pipelines.accounts import reauth
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.google.credentials import token_json_after_refresh
from monolyth_pipelines.google.retry import Backoff, RetryEvent
from monolyth_pipelines.store import accounts, domains, events, jobs, vault
from monolyth_pipelines.store.dialect import PageConnection, durable_commit
from monolyth_pipelines.store.errors import JobBusyError, JobLostError
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.outage import database_backoff, retried_transaction
from monolyth_pipelines.store.schema import AccountStatus, JobStatus
from monolyth_pipelines.store.timeutil import utcnow
from monolyth_pipelines.store.token_crypto import TokenKeyError
from monolyth_pipelines.sync.account_context import AccountContext, token_account
from monolyth_pipelines.sync.closing import reap_job
from monolyth_pipelines.sync.counters import SKIPPED_IDS_KEPT, SyncCounters  # noqa: F401  (old path)
from monolyth_pipelines.sync.guards import MassTombstoneRefused
from monolyth_pipelines.sync.pages import LOUD_DROP_THRESHOLD, PageWrite, store_page
from monolyth_pipelines.sync.refusals import AccountBusy, classify_run_error

if TYPE_CHECKING:
    from monolyth_pipelines.google.clients import GoogleClients
    from monolyth_pipelines.providers import Limits

__all__ = ["LOUD_DROP_THRESHOLD", "PageWrite", "RunIdentity", "SyncCounters", "SyncRun"]

# A running job whose run shows no sign of life for this long is taken over by the next run.
DEFAULT_STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class RunIdentity:
    account_id: uuid.UUID
    provider: str
    kind: str
    run_id: str
    attempt: int = 1
    job_id: uuid.UUID | None = None  # handed over by the Sync-now sensor


class AccountNotSyncable(SyncError):
    pass


class SyncRun:
    """The lifecycle of one run: start → commit_page per page → complete | fail."""

    def __init__(
        self,
        engine: sa.Engine,
        identity: RunIdentity,
        *,
        limits: Limits | None = None,
        settings_meta: dict[str, Any] | None = None,
        is_run_alive: Callable[[str], bool] | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.limits = limits
        self.settings_meta = limits.settings_meta() if limits is not None else (settings_meta or {})
        self.is_run_alive = is_run_alive or (lambda _run_id: True)
        self.stale_after = stale_after
        self.counters = SyncCounters()
        self.log = log or (lambda _msg: None)
        self.job: jobs.Job | None = None
        self.account: AccountContext | None = None
        # The settings the last completed run of this account and kind used ({} if none).
        self.previous_settings: dict[str, Any] = {}
        self.requested_by: object = None
        # Set by whoever builds the Google clients after ``start`` (the asset).
        self.clients: GoogleClients | None = None
        self.policy = Backoff()
        self.db_policy = database_backoff()

    # --- meta -----------------------------------------------------------------------------------
    def meta(self, **extra: Any) -> dict[str, Any]:
        return {
            "run_id": self.identity.run_id,
            "provider": self.identity.provider,
            **({"requested_by": str(self.requested_by)} if self.requested_by else {}),
            "settings": self.settings_meta,
            "counters": self.counters.as_meta(),
            "api_calls": self.clients.api_requests if self.clients is not None else 0,
            "duration_ms": self.duration_ms,
            **extra,
        }

    @property
    def duration_ms(self) -> int:
        """Since the job was first claimed: step retries and their waits count too."""
        started = self.job.started_at if self.job is not None else None
        if started is None:
            return 0
        started = started if started.tzinfo else started.replace(tzinfo=UTC)  # SQLite: naive UTC
        return max(0, int((utcnow() - started).total_seconds() * 1000))

    def _count_database_retry(self, event: RetryEvent) -> None:
        self.counters.database_retries += 1
        self.log(f"database unavailable, retry in {event.delay:.1f} s: {event.error.message}")

    def transaction(
        self,
        write: Callable[[sa.Connection], Any],
        *,
        begin: Callable[[sa.Engine], AbstractContextManager[sa.Connection]] | None = None,
    ) -> Any:
        """``write`` in one transaction (``begin(engine)``, else ``engine.begin()``), written
        again after a lost connection (with backoff), with the counters and token as they were
        before each try."""
        before, token = self.counters.snapshot(), self.account.token_json if self.account else None

        def reset() -> None:
            self.counters.restore(before)
            if self.account is not None:
                self.account.token_json = token

        return retried_transaction(
            self.engine,
            write,
            policy=self.db_policy,
            on_retry=self._count_database_retry,
            reset=reset,
            begin=begin,
        )

    @property
    def job_id(self) -> uuid.UUID:
        assert self.job is not None, "run not started"
        return self.job.id

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> jobs.Job:
        ident = self.identity
        with self.engine.begin() as conn:
            # The reap, the read of the open job and the claim below see one state of the account.
            jobs.lock_account(conn, ident.account_id)
            found = accounts.get_account(conn, ident.account_id)
            if found is None:
                raise AccountNotSyncable(ErrorCode.NOT_FOUND, f"account {ident.account_id} does not exist")
            if found.provider != ident.provider:
                raise AccountNotSyncable(
                    ErrorCode.BAD_REQUEST, f"account {ident.account_id} is a {found.provider} account"
                )
            try:
                token_json, key_error = accounts.get_token_json(conn, ident.account_id), None
            except TokenKeyError as exc:  # reported once the job row exists, as the job's failure
                token_json, key_error = None, str(exc)
            self.account = AccountContext(
                id=found.id,
                owner_id=found.owner_id,
                provider=found.provider,
                status=found.status,
                token_json=token_json,
                email=found.external_email or token_account(token_json),
            )
            held = jobs.open_job(conn, ident.account_id, ident.kind)
            if self._reap_dead_holder(conn, held):
                held = None
            before = held if ident.job_id is None or (held and held.id == ident.job_id) else None
            if ident.job_id is not None and before is None:
                before = jobs.get_job(conn, ident.job_id)
            ours = before is not None and before.status == JobStatus.RUNNING and before.run_id == ident.run_id
            # Who asked stays on the row once the run's meta replaces it (batch runs' tags cannot say).
            self.requested_by = (before.meta_json or {}).get("requested_by") if before else None
            if ours:
                # A step retry of this run: pages the earlier attempt committed are not fetched
                # again, so its counters carry on instead of starting from zero.
                self.counters = SyncCounters.resumed(before.meta_json if before else None)
            previous = jobs.last_completed_job(conn, ident.account_id, ident.kind)
            self.previous_settings = ((previous.meta_json or {}).get("settings") or {}) if previous else {}
            try:
                self.job = jobs.start_job(
                    conn,
                    account_id=ident.account_id,
                    kind=ident.kind,
                    run_id=ident.run_id,
                    attempt=ident.attempt,
                    job_id=ident.job_id,
                    meta=self.meta(),
                    current=before,
                )
            except JobBusyError as busy:
                # Rolls the transaction back: a refused run writes nothing, not even an event.
                raise AccountBusy(busy, self.stale_after) from None
            # A step retry re-enters with the row already running for this run: one started event per job.
            if not ours:
                events.log_event(
                    conn,
                    Event.SYNC_STARTED,
                    {"provider": ident.provider, "account_id": ident.account_id, "run_id": ident.run_id},
                )
        self.log(f"job {self.job.id} running (attempt {ident.attempt})")
        if found.status != AccountStatus.CONNECTED:
            # Raised after the commit, so the refused run is a job row of its own and
            # "why did nothing sync" has an answer in the table.
            code = ErrorCode.AUTH_REVOKED if found.status == AccountStatus.ERROR else ErrorCode.BAD_REQUEST
            raise AccountNotSyncable(code, f"account {ident.account_id} is {found.status}, not connected")
        if key_error is not None:
            raise SyncError(ErrorCode.TOKEN_KEY_UNAVAILABLE, key_error)
        if not self.account.token_json:
            raise SyncError(ErrorCode.AUTH_REVOKED, "account has no stored OAuth tokens; reconnect it")
        return self.job

    def _reap_dead_holder(self, conn: sa.Connection, held: jobs.Job | None) -> bool:
        """A job left running by a run that died (process killed) must not block the account forever."""
        ident = self.identity
        if held is None or held.status != JobStatus.RUNNING or held.run_id in (None, ident.run_id):
            return False
        stale = utcnow() - held.updated_at > self.stale_after
        if held.run_id is not None and self.is_run_alive(held.run_id) and not stale:
            return False
        reap_job(conn, held, "the run holding this job stopped without finishing it (process killed or lost)")
        self.log(f"took over job {held.id} from dead run {held.run_id}")
        return True

    def heartbeat(self, conn: sa.Connection) -> None:
        """Inside each page's transaction: progress stays visible and proves the run alive; raises
        ``JobLostError`` (the page rolls back) when another run took the job over."""
        if not jobs.update_meta(conn, self.job_id, self.meta(), run_id=self.identity.run_id):
            raise JobLostError(f"job {self.job_id} is no longer held by run {self.identity.run_id}")

    @contextmanager
    def fenced(self) -> Iterator[sa.Connection]:
        """A write outside the page commits that commits only while this run holds its job."""
        with self.engine.begin() as conn:
            jobs.assert_held(conn, self.job_id, self.identity.run_id)
            yield conn

    # --- pages ------------------------------------------------------------------------------------
    def commit_pages(self, pages: Iterable[PageWrite]) -> None:
        """Drive a fetch loop: each page it yields is committed before it fetches the next, all
        on one connection."""
        iterator = iter(pages)
        connection = PageConnection(self.engine)
        try:
            for page in iterator:
                self.commit_page(page, connection)
        finally:
            # On a failed commit the loop stops now (its prefetch thread too), not when collected.
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            connection.close()

    def commit_page(self, page: PageWrite, connection: PageConnection | None = None) -> None:
        """The one place a page is written: its rows, tombstones, sweep ids and position, the
        heartbeat and a refreshed token, in one transaction."""
        assert self.account is not None, "run not started"
        account_id, c = self.account.id, self.counters

        def write(conn: sa.Connection) -> None:
            store_page(conn, page, account_id, self.identity.provider, self.job_id, c)
            # The fence: if another run took the job over, this page rolls back and the run
            # stops. One UPDATE of the job row, and the page's last statement: a take-over that
            # commits before it makes it match nothing, and one that comes after waits for this
            # commit. Before the token save, which must not outlive a page that rolls back.
            self.heartbeat(conn)
            self._save_refreshed_token(conn)

        held = connection if connection is not None else PageConnection(self.engine)
        try:
            self.transaction(write, begin=lambda _engine: held.transaction())
        finally:
            if connection is None:
                held.close()

    def _save_refreshed_token(self, conn: sa.Connection) -> None:
        assert self.account is not None and self.account.token_json is not None
        if self.clients is None:
            return
        token_json = self.account.token_json
        refreshed = token_json_after_refresh(token_json, self.clients.credentials)
        if refreshed is None:
            return
        # Google may have revoked the old refresh token already: losing this commit in a server
        # crash would disconnect the account, so it is not one of the cheap asynchronous ones.
        durable_commit(conn)
        if not accounts.save_token_json(
            conn, self.account.id, refreshed, expected_refresh_token=token_json.get("refresh_token")
        ):
            self.log("the account was reconnected during this run; its new tokens are kept")
        self.account.token_json = refreshed

    # --- outcome ----------------------------------------------------------------------------------
    def complete(self) -> dict[str, Any]:
        ident = self.identity
        meta: dict[str, Any] = {}

        def write(conn: sa.Connection) -> None:
            meta.update(self.meta())  # per try: the row shows the database retries it needed
            if jobs.still_held(conn, self.job_id, ident.run_id):
                vault.follow_source_rows(conn, ident.account_id, ident.provider)
            if not jobs.finish_job(conn, self.job_id, JobStatus.COMPLETED, meta=meta, run_id=ident.run_id):
                # The reaper or a failure sensor closed the row meanwhile (this run looked dead),
                # or a commit whose answer was lost did: the first recorded outcome stands.
                self.log(f"job {self.job_id} was already closed; not recording completion over it")
                return
            events.log_event(
                conn,
                Event.SYNC_COMPLETED,
                {
                    "provider": ident.provider,
                    "account_id": ident.account_id,
                    "run_id": ident.run_id,
                    "file_count": self.counters.stored,
                    "duration_ms": meta["duration_ms"],
                },
            )

        self.transaction(write)
        return meta

    def fail(self, error: SyncError, *, will_retry: bool) -> None:
        """Record a failure. While Dagster will retry, the row stays running: not failed in between."""
        message = f"{error.code}: {error.message}"
        ident = self.identity
        grant_domain = domains.domain_of_grant(self.account.token_json if self.account else None)
        if self.job is None:
            return  # no job was opened: nothing to close, no run to report
        # A refused reconcile: the job row says how many rows it would have tombstoned.
        refused = {"mass_tombstone_refused": error.meta()} if isinstance(error, MassTombstoneRefused) else {}

        def write(conn: sa.Connection) -> None:
            if will_retry:
                jobs.update_meta(
                    conn, self.job_id, self.meta(last_attempt_error=message), run_id=ident.run_id
                )
                return
            closed_now = jobs.finish_job(
                conn,
                self.job_id,
                JobStatus.FAILED,
                meta=self.meta(**refused),
                last_error=message,
                run_id=ident.run_id,
            )
            if not closed_now:
                return  # closed already, or another run holds the job now: this run writes nothing more
            if reauth.needs_reauth(error):
                accounts.mark_needs_reauth(conn, ident.account_id, reauth.reauth_message(error))
            if grant_domain and reauth.domain_wide(error):  # the domain's key: all its accounts at once
                domains.mark_needs_reauth(conn, uuid.UUID(str(grant_domain)), reauth.reauth_message(error))
            events.log_event(
                conn,
                Event.SYNC_FAILED,
                {
                    "provider": ident.provider,
                    "account_id": ident.account_id,
                    "run_id": ident.run_id,
                    "error_code": str(error.code),
                    "error_msg": error.message,
                },
            )

        try:
            self.transaction(write)
        except Exception as exc:
            # The database is still away or refuses writes: the row stays running under this run's
            # id until the run-failure sensor or the reaper closes it. Raising would hide the error.
            # Only the classified message: the exception's text may quote rows, titles or parameters.
            problem = classify_run_error(exc).message
            self.log(f"job {self.job_id}: {message}; recording the failure also failed: {problem}")
