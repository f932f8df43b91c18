"""One sync run of one account, independent of the provider: the connector_jobs row, the
activity events, the counters, and the rules for failing honestly.

Drive and Gmail differ only in their fetch loops; everything a run records goes through here.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from googleapiclient.http import HttpRequest

from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.google.clients import GoogleClients
from monolyth_pipelines.google.credentials import token_json_after_refresh
from monolyth_pipelines.google.errors import ErrorCode, SyncError, safe_message
from monolyth_pipelines.google.retry import Backoff, RetryEvent, call_with_retries
from monolyth_pipelines.store import accounts, events, files, jobs, vault
from monolyth_pipelines.store.errors import JobBusyError, JobLostError
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.schema import AccountStatus, JobStatus
from monolyth_pipelines.store.timeutil import utcnow
from monolyth_pipelines.sync.refusals import AccountBusy

# How many skipped ids per reason a job row keeps; the counts are always complete.
SKIPPED_IDS_KEPT = 100
# A running job whose run shows no sign of life for this long is taken over by the next run.
DEFAULT_STALE_AFTER = timedelta(minutes=10)
# Below this many live items a drop to zero is not alarming enough to shout about.
LOUD_DROP_THRESHOLD = 100


@dataclass
class SyncCounters:
    """What a run saw and did; lands in meta_json, Dagster metadata and the completed event."""

    seen: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0
    tombstoned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_ids: dict[str, list[str]] = field(default_factory=dict)
    pages: int = 0
    retries: int = 0
    vault_imported: int = 0
    mode: str = ""  # "full", "incremental", "full_after_invalid_cursor"
    limit_reached: bool = False
    warnings: list[str] = field(default_factory=list)
    incomplete_search: int = 0  # listing pages Drive answered with incompleteSearch: true

    @classmethod
    def resumed(cls, meta: dict[str, Any] | None) -> SyncCounters:
        """The counters an earlier attempt of the same run left in the job row (``as_meta``)."""
        c = (meta or {}).get("counters") or {}
        return cls(
            seen=c.get("seen", 0),
            inserted=c.get("inserted", 0),
            updated=c.get("updated", 0),
            unchanged=c.get("unchanged", 0),
            restored=c.get("restored", 0),
            tombstoned=Counter(c.get("tombstoned") or {}),
            skipped=Counter(c.get("skipped") or {}),
            skipped_ids={k: list(v) for k, v in (c.get("skipped_ids") or {}).items()},
            pages=c.get("pages", 0),
            retries=c.get("retries", 0),
            vault_imported=c.get("vault_imported", 0),
            mode=c.get("mode", ""),
            limit_reached=c.get("limit_reached", False),
            warnings=list(c.get("warnings") or []),
            incomplete_search=c.get("incomplete_search", 0),
        )

    def skip(self, reason: str, external_id: str) -> None:
        self.skipped[reason] += 1
        kept = self.skipped_ids.setdefault(reason, [])
        if len(kept) < SKIPPED_IDS_KEPT:
            kept.append(external_id)

    @property
    def stored(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_meta(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "seen": self.seen,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "restored": self.restored,
            "tombstoned": dict(self.tombstoned),
            "tombstoned_total": sum(self.tombstoned.values()),
            "skipped": dict(self.skipped),
            "skipped_total": sum(self.skipped.values()),
            "skipped_ids": self.skipped_ids,
            "pages": self.pages,
            "retries": self.retries,
            "vault_imported": self.vault_imported,
            "limit_reached": self.limit_reached,
            "warnings": self.warnings,
            "incomplete_search": self.incomplete_search,
        }


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
        self._started = time.monotonic()

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
        return int((time.monotonic() - self._started) * 1000)

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
            try:
                self.job = jobs.start_job(
                    conn,
                    account_id=ident.account_id,
                    kind=ident.kind,
                    run_id=ident.run_id,
                    attempt=ident.attempt,
                    job_id=ident.job_id,
                    meta=self.meta(),
                )
            except JobBusyError as busy:
                raise AccountBusy(busy, self.stale_after) from None
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
        """Called inside each page's transaction: progress stays visible and proves the run alive.

        Raises ``JobLostError`` when another run took the job over: the page rolls back with it."""
        if not jobs.update_meta(conn, self.job_id, self.meta(), run_id=self.identity.run_id):
            raise JobLostError(f"job {self.job_id} is no longer held by run {self.identity.run_id}")

    @contextmanager
    def fenced(self) -> Iterator[sa.Connection]:
        """A write transaction that commits only while this run still holds its job."""
        with self.engine.begin() as conn:
            jobs.assert_held(conn, self.job_id, self.identity.run_id)
            yield conn

    def complete(self) -> dict[str, Any]:
        ident = self.identity
        meta = self.meta()
        with self.engine.begin() as conn:
            if jobs.still_held(conn, self.job_id, ident.run_id):
                vault.follow_source_rows(conn, ident.account_id, ident.provider)
            if not jobs.finish_job(conn, self.job_id, JobStatus.COMPLETED, meta=meta, run_id=ident.run_id):
                # The reaper or a failure sensor closed the row meanwhile (this run looked dead);
                # the first recorded outcome stands, and a second event would contradict it.
                self.log(f"job {self.job_id} was already closed; not recording completion over it")
                return meta
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
        return meta

    def fail(self, error: SyncError, *, will_retry: bool) -> None:
        """Record a failure. While Dagster will retry, the row stays running: not failed in between."""
        message = f"{error.code}: {error.message}"
        ident = self.identity
        with self.engine.begin() as conn:
            if self.job is None:
                return
            if will_retry:
                jobs.update_meta(
                    conn, self.job_id, self.meta(last_attempt_error=message), run_id=ident.run_id
                )
                return
            closed_now = jobs.finish_job(
                conn, self.job_id, JobStatus.FAILED, meta=self.meta(), last_error=message, run_id=ident.run_id
            )
            if not closed_now:
                return  # another run holds the job now: this run writes nothing more
            if error.code == ErrorCode.AUTH_REVOKED:
                accounts.set_status(conn, ident.account_id, AccountStatus.ERROR)
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
                return request.execute()
            with around():
                return request.execute()

        return call_with_retries(attempt, policy=self.policy, on_retry=self._count_retry)

    def _commit_page(self, write: Callable[[sa.Connection], None]) -> None:
        with self.engine.begin() as conn:
            # Fenced: if another run took the job over, this page rolls back and the run stops.
            jobs.assert_held(conn, self.run.job_id, self.run.identity.run_id)
            refreshed = token_json_after_refresh(self.token_json, self.clients.credentials)
            if conn.dialect.name == "postgresql" and refreshed is None:
                # A page's rows and the cursor that covers them commit together, so losing the
                # last commits in a server crash only means fetching those pages again: the
                # WAL flush at every page commit buys nothing here. Not when the page carries a
                # rotated refresh token: Google has revoked the old one, and losing the new one
                # would disconnect the account.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            write(conn)
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

    def _write_records(self, conn: sa.Connection, records: list[FileRecord]) -> files.UpsertCounts:
        counts = files.upsert_files(conn, self.account_id, self.run.identity.provider, records)
        self.counters.inserted += counts.inserted
        self.counters.updated += counts.updated
        self.counters.unchanged += counts.unchanged
        self.counters.restored += counts.restored
        return counts


def reap_job(conn: sa.Connection, job: jobs.Job, reason: str, error_code: str = "run_died") -> bool:
    """Mark a job whose run died as failed, with the failed event; False if it was already closed."""
    account = accounts.get_account(conn, job.account_id)
    message = safe_message(f"{error_code}: {reason}")
    if not jobs.finish_job(conn, job.id, JobStatus.FAILED, last_error=message):
        return False
    events.log_event(
        conn,
        Event.SYNC_FAILED,
        {
            "provider": account.provider if account else "unknown",
            "account_id": job.account_id,
            "run_id": job.run_id or "",
            "error_code": error_code,
            "error_msg": safe_message(reason),
        },
    )
    return True
