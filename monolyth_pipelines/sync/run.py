"""One sync run of one account, independent of the provider: the connector_jobs row, the
activity events, the counters, and the rules for failing honestly.

Drive and Gmail differ only in their fetch loops; everything a run records goes through here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import sqlalchemy as sa
from googleapiclient.http import HttpRequest

from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.google.clients import GoogleClients
from monolyth_pipelines.google.credentials import token_json_after_refresh
from monolyth_pipelines.google.errors import ErrorCode, SyncError, safe_message
from monolyth_pipelines.google.retry import Backoff, RetryEvent, call_with_retries, expect_json_object
from monolyth_pipelines.store import accounts, events, files, jobs, vault
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.outage import database_backoff, database_error, with_database_retries
from monolyth_pipelines.store.schema import AccountStatus, JobStatus
from monolyth_pipelines.store.timeutil import utcnow
from monolyth_pipelines.sync.counters import SKIPPED_IDS_KEPT, SyncCounters

__all__ = ["SKIPPED_IDS_KEPT", "AccountNotSyncable", "PagedSync", "RunIdentity", "SyncCounters", "SyncRun"]

# A running job whose run shows no sign of life for this long is taken over by the next run.
DEFAULT_STALE_AFTER = timedelta(minutes=10)
# Below this many live items a drop to zero is not alarming enough to shout about.
LOUD_DROP_THRESHOLD = 100


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
    """The lifecycle of one run: start → (heartbeat per page) → complete | fail."""

    def __init__(
        self,
        engine: sa.Engine,
        identity: RunIdentity,
        *,
        settings_meta: dict[str, Any],
        is_run_alive: Callable[[str], bool] | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.settings_meta = settings_meta
        self.is_run_alive = is_run_alive or (lambda _run_id: True)
        self.stale_after = stale_after
        self.counters = SyncCounters()
        self.api_calls: Callable[[], int] = lambda: 0
        self.log = log or (lambda _msg: None)
        self.job: jobs.Job | None = None
        self.db_policy = database_backoff()

    # --- meta -----------------------------------------------------------------------------------
    def meta(self, **extra: Any) -> dict[str, Any]:
        return {
            "run_id": self.identity.run_id,
            "provider": self.identity.provider,
            "settings": self.settings_meta,
            "counters": self.counters.as_meta(),
            "api_calls": self.api_calls(),
            "duration_ms": self.duration_ms,
            **extra,
        }

    @property
    def duration_ms(self) -> int:
        """Since the job was first claimed: a step retry continues the same job, so its wait and
        the earlier attempts count too."""
        started = self.job.started_at if self.job is not None else None
        if started is None:
            return 0
        if started.tzinfo is None:  # SQLite hands back naive UTC
            started = started.replace(tzinfo=UTC)
        return max(0, int((utcnow() - started).total_seconds() * 1000))

    def _count_database_retry(self, event: RetryEvent) -> None:
        self.counters.database_retries += 1
        self.log(f"database unavailable, retrying in {event.delay:.1f} s: {event.error.message}")

    def transaction(self, write: Callable[[sa.Connection], Any]) -> Any:
        """``write`` in one transaction, written again after a lost connection (with backoff),
        with the counters as they were before each try."""
        before = self.counters.snapshot()

        def attempt() -> Any:
            try:
                with self.engine.begin() as conn:
                    return write(conn)
            except Exception:
                self.counters.restore(before)
                raise

        return with_database_retries(attempt, policy=self.db_policy, on_retry=self._count_database_retry)

    @property
    def job_id(self) -> uuid.UUID:
        assert self.job is not None, "run not started"
        return self.job.id

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> jobs.Job:
        ident = self.identity
        with self.engine.begin() as conn:
            account = accounts.get_account(conn, ident.account_id)
            if account is None:
                raise AccountNotSyncable(ErrorCode.NOT_FOUND, f"account {ident.account_id} does not exist")
            if account.provider != ident.provider:
                raise AccountNotSyncable(
                    ErrorCode.BAD_REQUEST, f"account {ident.account_id} is a {account.provider} account"
                )
            self._reap_dead_holder(conn)
            before = (
                jobs.get_job(conn, ident.job_id)
                if ident.job_id
                else jobs.open_job(conn, ident.account_id, ident.kind)
            )
            if before is not None and before.status == JobStatus.RUNNING and before.run_id == ident.run_id:
                # A step retry of this run: pages the earlier attempt committed are not fetched
                # again, so its counters carry on instead of starting from zero.
                self.counters = SyncCounters.resumed(before.meta_json)
            self.job = jobs.start_job(
                conn,
                account_id=ident.account_id,
                kind=ident.kind,
                run_id=ident.run_id,
                attempt=ident.attempt,
                job_id=ident.job_id,
                meta=self.meta(),
            )
            # A step retry re-enters with the row already running for this run: one started event per job.
            if before is None or before.status != JobStatus.RUNNING or before.run_id != ident.run_id:
                events.log_event(
                    conn,
                    Event.SYNC_STARTED,
                    {"provider": ident.provider, "account_id": ident.account_id, "run_id": ident.run_id},
                )
        self.log(f"job {self.job.id} running (attempt {ident.attempt})")
        if account.status != AccountStatus.CONNECTED:
            # Raised after the commit, so the refused run is a job row of its own and
            # "why did nothing sync" has an answer in the table.
            code = ErrorCode.AUTH_REVOKED if account.status == AccountStatus.ERROR else ErrorCode.BAD_REQUEST
            raise AccountNotSyncable(code, f"account {ident.account_id} is {account.status}, not connected")
        return self.job

    def _reap_dead_holder(self, conn: sa.Connection) -> None:
        """A job left running by a run that died (process killed) must not block the account forever."""
        ident = self.identity
        held = jobs.open_job(conn, ident.account_id, ident.kind)
        if held is None or held.status != JobStatus.RUNNING or held.run_id in (None, ident.run_id):
            return
        stale = utcnow() - held.updated_at > self.stale_after
        if held.run_id is not None and self.is_run_alive(held.run_id) and not stale:
            return
        reap_job(conn, held, "the run holding this job stopped without finishing it (process killed or lost)")
        self.log(f"took over job {held.id} from dead run {held.run_id}")

    def heartbeat(self, conn: sa.Connection) -> None:
        """Called inside each page's transaction: progress stays visible and proves the run alive."""
        jobs.update_meta(conn, self.job_id, self.meta())

    def complete(self) -> dict[str, Any]:
        ident = self.identity
        meta: dict[str, Any] = {}

        def write(conn: sa.Connection) -> None:
            # Computed per try, so the row shows the database retries this write needed.
            meta.update(self.meta())
            vault.follow_source_rows(conn, ident.account_id, ident.provider)
            if not jobs.finish_job(conn, self.job_id, JobStatus.COMPLETED, meta=meta):
                # The reaper or a failure sensor closed the row meanwhile (this run looked dead),
                # or a commit whose answer was lost already closed it: the first recorded
                # outcome stands, and a second event would contradict it.
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
        if self.job is None:
            return  # no job was opened: there is nothing to close and no run to report

        def write(conn: sa.Connection) -> None:
            if will_retry:
                jobs.update_meta(conn, self.job_id, self.meta(last_attempt_error=message))
                return
            closed_now = jobs.finish_job(
                conn, self.job_id, JobStatus.FAILED, meta=self.meta(), last_error=message
            )
            if error.code == ErrorCode.AUTH_REVOKED:
                accounts.set_status(conn, ident.account_id, AccountStatus.ERROR)
            if not closed_now:
                return
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
            # The database is still away (or refuses writes): the row stays running under this
            # run's id, and the run-failure sensor or the stale-job reaper closes it once the
            # database answers. Raising here would hide the sync's own error behind this one.
            problem = database_error(exc) or exc
            self.log(f"could not record the outcome of job {self.job_id}: {safe_message(str(problem))}")


@dataclass
class PagedSync:
    """What every provider's fetch loop shares: Google calls retried with backoff, and page
    commits that carry the page's rows, its cursor, a refreshed token and the heartbeat in one
    transaction. A provider subclasses it and adds its own loop."""

    run: SyncRun
    clients: GoogleClients
    policy: Backoff
    owner_id: uuid.UUID
    token_json: dict[str, Any]

    def __post_init__(self) -> None:
        self.engine: sa.Engine = self.run.engine
        self.account_id = self.run.identity.account_id
        self.counters = self.run.counters
        self.run.api_calls = lambda: self.clients.api_requests

    def _count_retry(self, _event: RetryEvent) -> None:
        self.counters.retries += 1

    def _execute(
        self, request: HttpRequest, *, around: Callable[[], AbstractContextManager[object]] | None = None
    ) -> Any:
        """``request`` with capped backoff; each attempt runs inside ``around()`` when given (e.g.
        a quota pacer: a retried call spends quota again)."""

        def attempt() -> Any:
            if around is None:
                return expect_json_object(request.execute())
            with around():
                return expect_json_object(request.execute())

        return call_with_retries(attempt, policy=self.policy, on_retry=self._count_retry)

    def _commit_page(self, write: Callable[[sa.Connection], None]) -> None:
        """One page's transaction; after a lost connection it is written again (see
        ``SyncRun.transaction``), so ``write`` only touches the database and the counters."""
        token_before = self.token_json

        def page(conn: sa.Connection) -> None:
            self.token_json = token_before
            if conn.dialect.name == "postgresql":
                # A page's rows and the cursor that covers them commit together, so losing the
                # last commits in a server crash only means fetching those pages again: the
                # WAL flush at every page commit buys nothing here.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            write(conn)
            refreshed = token_json_after_refresh(self.token_json, self.clients.credentials)
            if refreshed is not None:
                if not accounts.save_token_json(
                    conn,
                    self.account_id,
                    refreshed,
                    expected_refresh_token=self.token_json.get("refresh_token"),
                ):
                    self.run.log("the account was reconnected during this run; its new tokens are kept")
                self.token_json = refreshed
            self.counters.pages += 1
            self.run.heartbeat(conn)

        try:
            self.run.transaction(page)
        except Exception:
            self.token_json = token_before
            raise

    def _write_records(self, conn: sa.Connection, records: list[FileRecord]) -> files.UpsertCounts:
        counts = files.upsert_files(conn, self.account_id, self.run.identity.provider, records)
        self.counters.inserted += counts.inserted
        self.counters.updated += counts.updated
        self.counters.unchanged += counts.unchanged
        self.counters.restored += counts.restored
        return counts


def reap_job(conn: sa.Connection, job: jobs.Job, reason: str, error_code: str = "run_died") -> bool:
    """Mark a job failed; False if it was already closed.

    The failed event is written only for a job a Dagster run was started for, and carries that
    run's id: a request refused before any run (account disconnected) closes its row with
    ``last_error`` but is no failed sync.
    """
    account = accounts.get_account(conn, job.account_id)
    message = safe_message(f"{error_code}: {reason}")
    if not jobs.finish_job(conn, job.id, JobStatus.FAILED, last_error=message):
        return False
    if not job.run_id:
        return True
    events.log_event(
        conn,
        Event.SYNC_FAILED,
        {
            "provider": account.provider if account else "unknown",
            "account_id": job.account_id,
            "run_id": job.run_id,
            "error_code": error_code,
            "error_msg": safe_message(reason),
        },
    )
    return True
