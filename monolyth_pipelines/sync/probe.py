"""The change probe: before the schedule queues a run, ask Google whether the account changed.

Per account and corpus it is one request: Drive ``changes.list`` from the saved page token with
pageSize=1 (precise per corpus, shared drives included, unlike comparing start page tokens, which
move with every corpus of the user), Gmail ``users.getProfile`` (the mailbox historyId). With
shared drives on, one ``drives.list`` finds a shared drive never synced. Probes run in a bounded
thread pool under one pacer (google/pacing.py), within a time budget; an account not probed in
time, or whose probe failed, gets its run as before probes existed.

A Drive push notification is probed too, before the receiver queues anything
(``drive_notification_needs_run``): one ``changes.list`` page from the channel's saved token,
judged against the account's limits, so a change to a file the run would drop anyway (type, size,
trash) costs one request instead of a run.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import google_auth_httplib2
import sqlalchemy as sa

from monolyth_pipelines.domain import probe as rules
from monolyth_pipelines.domain.probe import Verdict
from monolyth_pipelines.google.clients import HTTP_TIMEOUT_SECONDS, CountingHttp, shared_api
from monolyth_pipelines.google.credentials import credentials_for_grant, token_json_after_refresh
from monolyth_pipelines.google.errors import classify_exception
from monolyth_pipelines.google.pacing import Pacer
from monolyth_pipelines.settings import DriveLimits, FreshnessSettings, GoogleEndpoints
from monolyth_pipelines.store import accounts, automation_queries, files, probe_queries, sync_state
from monolyth_pipelines.store.probe_queries import ProbeCandidate
from monolyth_pipelines.store.schema import AccountStatus, Provider

MAIN_CORPUS = {Provider.GOOGLE_DRIVE.value: "drive", Provider.GMAIL.value: "gmail"}
DRIVE_PROBE_FIELDS = "nextPageToken,newStartPageToken,changes(fileId)"
# What the limits are judged on: the same fields the run classifies a change by.
DRIVE_NOTIFICATION_FIELDS = (
    "nextPageToken,newStartPageToken,"
    "changes(changeType,removed,fileId,driveId,file(id,mimeType,size,trashed))"
)
# Changes read to judge a notification; a longer feed gets its run without more reading.
DRIVE_NOTIFICATION_PAGE_SIZE = 100


def _changes_args(corpus: str) -> dict[str, Any]:
    drive_id = rules.shared_drive_id(corpus)
    args: dict[str, Any] = {"supportsAllDrives": True}
    return args | (
        {"driveId": drive_id, "includeItemsFromAllDrives": True}
        if drive_id
        else {"includeItemsFromAllDrives": False}
    )


@dataclass
class ProbePlan:
    """What a schedule tick does: which accounts to queue, and what the probe saw."""

    to_run: list[uuid.UUID] | None  # None: probe off, every due account runs
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    idle: list[uuid.UUID] = field(default_factory=list)
    seconds: float = 0.0
    in_error: int = 0  # accounts in error: skipped until a reconnect

    def summary(self) -> str:
        skipped = f"skipped {self.in_error} account(s) in error until they are reconnected"
        if self.to_run is None:
            return f"{skipped}; change probe off"
        parts = [f"{n} {v}" for v, n in sorted(self.verdicts.items())]
        return f"{skipped}; probe: {', '.join(parts) or 'nothing due'} ({self.requests} Google requests)"


@dataclass
class _Outcome:
    account_id: uuid.UUID
    verdict: Verdict
    requests: int = 0
    error: str | None = None
    refreshed: dict[str, Any] | None = None
    refresh_token: str | None = None


class Prober:
    def __init__(
        self,
        endpoints: GoogleEndpoints,
        cfg: FreshnessSettings,
        *,
        include_shared_drives: bool = False,
        deadline: float | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.cfg = cfg
        self.include_shared_drives = include_shared_drives
        self.pacer = Pacer(cfg.probe_requests_per_second)
        self.deadline = deadline

    def probe(self, candidate: ProbeCandidate) -> _Outcome:
        main = MAIN_CORPUS[candidate.provider]
        if rules.needs_run_without_asking(candidate.corpora, main) or not candidate.token_json:
            return _Outcome(candidate.account_id, Verdict.UNKNOWN)
        if self.deadline is not None and time.monotonic() > self.deadline:
            return _Outcome(candidate.account_id, Verdict.UNKNOWN, error="out_of_time")
        transport = CountingHttp(timeout=HTTP_TIMEOUT_SECONDS)
        outcome = _Outcome(candidate.account_id, Verdict.UNKNOWN)
        try:
            credentials = credentials_for_grant(candidate.token_json, self.endpoints)
            http = google_auth_httplib2.AuthorizedHttp(credentials, http=transport)
            if candidate.provider == Provider.GMAIL.value:
                outcome.verdict = self._gmail(http, candidate)
            else:
                outcome.verdict = self._drive(http, candidate)
            outcome.refreshed = token_json_after_refresh(candidate.token_json, credentials)
            outcome.refresh_token = candidate.token_json.get("refresh_token")
        except Exception as exc:  # any doubt means a run; the run reports the error properly
            outcome.verdict = Verdict.UNKNOWN
            outcome.error = str(classify_exception(exc).code)
        finally:
            outcome.requests = transport.total
            for conn in transport.connections.values():
                conn.close()
        return outcome

    def _send(self, request: Any, http: Any) -> Any:
        self.pacer.acquire(1)
        return request.execute(http=http)

    def _drive(self, http: Any, candidate: ProbeCandidate) -> Verdict:
        drive = shared_api("drive", self.endpoints.drive_api_endpoint)
        if self.include_shared_drives:
            listed = self._send(drive.drives().list(pageSize=100, fields="nextPageToken,drives(id)"), http)
            ids = [d["id"] for d in listed.get("drives", [])]
            if listed.get("nextPageToken") or rules.unseen_shared_drives(ids, candidate.corpora):
                return Verdict.CHANGED
        verdicts = []
        for corpus in candidate.corpora:
            if corpus.corpus != "drive" and not self.include_shared_drives:
                continue  # the run would not read it either
            args = _changes_args(corpus.corpus)
            page = self._send(
                drive.changes().list(
                    pageToken=corpus.cursor,
                    pageSize=1,
                    includeRemoved=True,
                    spaces="drive",
                    fields=DRIVE_PROBE_FIELDS,
                    **args,
                ),
                http,
            )
            verdict = rules.drive_corpus_verdict(page)
            if verdict != Verdict.IDLE:
                return verdict  # one changed corpus is enough: the run reads them all
            verdicts.append(verdict)
        return rules.combine(verdicts)

    def _gmail(self, http: Any, candidate: ProbeCandidate) -> Verdict:
        gmail = shared_api("gmail", self.endpoints.gmail_api_endpoint)
        [state] = [c for c in candidate.corpora if c.corpus == "gmail"]
        assert state.cursor is not None
        profile = self._send(gmail.users().getProfile(userId="me", fields="historyId"), http)
        return rules.gmail_verdict(state.cursor, profile)


def drive_notification_needs_run(
    engine: sa.Engine,
    account_id: uuid.UUID,
    corpus: str,
    *,
    endpoints: GoogleEndpoints,
    limits: DriveLimits,
) -> bool:
    """Does a Drive notification on ``corpus`` need a run? Any doubt (no cursor, a sweep under
    way, tokens this process cannot open, a Google error) says yes, as without the probe."""
    from monolyth_pipelines.store.token_crypto import TokenKeyError

    try:
        with engine.connect() as conn:
            token_json = accounts.get_token_json(conn, account_id)
            state = sync_state.get_state(conn, account_id, corpus)
    except TokenKeyError:
        return True
    if not token_json or state is None or not state.cursor or state.sweep_in_progress:
        return True
    transport = CountingHttp(timeout=HTTP_TIMEOUT_SECONDS)
    try:
        credentials = credentials_for_grant(token_json, endpoints)
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=transport)
        page = (
            shared_api("drive", endpoints.drive_api_endpoint)
            .changes()
            .list(
                pageToken=state.cursor,
                pageSize=DRIVE_NOTIFICATION_PAGE_SIZE,
                includeRemoved=True,
                spaces="drive",
                fields=DRIVE_NOTIFICATION_FIELDS,
                **_changes_args(corpus),
            )
            .execute(http=http)
        )
        changes = page.get("changes") if isinstance(page.get("changes"), list) else []
        ids = [str(c["fileId"]) for c in changes if isinstance(c, dict) and isinstance(c.get("fileId"), str)]
        refreshed = token_json_after_refresh(token_json, credentials)
        with engine.begin() as conn:
            stored = files.stored_meta(conn, account_id, ids) if ids else {}
            if refreshed is not None:
                probe_queries.save_refreshed_tokens(
                    conn, [(account_id, refreshed, token_json.get("refresh_token"))]
                )
    except Exception:  # the run reports errors properly
        return True
    finally:
        for conn in transport.connections.values():
            conn.close()
    live = {file_id for file_id, (_meta, deleted_reason) in stored.items() if deleted_reason is None}
    return rules.drive_notification_verdict(page, limits, live) != Verdict.IDLE


def probe_candidates(
    engine: sa.Engine,
    candidates: Sequence[ProbeCandidate],
    *,
    now: datetime,
    cfg: FreshnessSettings | None = None,
    endpoints: GoogleEndpoints | None = None,
) -> ProbePlan:
    """Probe ``candidates``; record the idle ones as checked at ``now``; the rest are to run."""
    cfg = cfg or FreshnessSettings.from_env()
    started = time.monotonic()
    prober = Prober(
        endpoints or GoogleEndpoints.from_env(),
        cfg,
        include_shared_drives=DriveLimits.from_env().include_shared_drives,
        deadline=started + cfg.probe_time_budget_seconds,
    )
    plan = ProbePlan(to_run=[])
    assert plan.to_run is not None
    refreshed: list[tuple[uuid.UUID, dict[str, Any], str | None]] = []
    with ThreadPoolExecutor(max_workers=max(1, cfg.probe_concurrency), thread_name_prefix="probe") as pool:
        for outcome in pool.map(prober.probe, candidates):
            plan.verdicts[outcome.verdict.value] += 1
            plan.requests += outcome.requests
            if outcome.error:
                plan.errors[outcome.error] += 1
            if outcome.refreshed is not None:
                refreshed.append((outcome.account_id, outcome.refreshed, outcome.refresh_token))
            if outcome.verdict == Verdict.IDLE:
                plan.idle.append(outcome.account_id)
            else:
                plan.to_run.append(outcome.account_id)
    with engine.begin() as conn:
        probe_queries.mark_checked(conn, plan.idle, now)
        probe_queries.save_refreshed_tokens(conn, refreshed)
    plan.seconds = time.monotonic() - started
    return plan


def plan_scheduled_syncs(
    engine: sa.Engine,
    *,
    provider: str,
    kind: str,
    due_before: datetime,
    now: datetime,
    cfg: FreshnessSettings | None = None,
) -> ProbePlan:
    """The schedule's question: which due accounts need a run. Idle ones are marked checked."""
    cfg = cfg or FreshnessSettings.from_env()
    if not cfg.probe_enabled:
        return ProbePlan(to_run=None)
    push_due_before = min(due_before, now - timedelta(hours=cfg.push_poll_hours))
    with engine.connect() as conn:
        candidates = probe_queries.due_accounts(
            conn,
            provider=provider,
            kind=kind,
            due_before=due_before,
            push_due_before=push_due_before,
            now=now,
        )
    return probe_candidates(engine, candidates, now=now, cfg=cfg)


def batches(plan: ProbePlan) -> list[list[uuid.UUID] | None]:
    """``request_syncs``'s account_ids per statement: [None] (every due account) with the probe off."""
    if plan.to_run is None:
        return [None]
    return list(probe_queries.chunks(plan.to_run))


def queue_due_syncs(
    engine: sa.Engine,
    *,
    provider: str,
    kind: str,
    requested_by: str,
    due_before: datetime,
    now: datetime,
) -> tuple[list[automation_queries.RequestedJob], ProbePlan]:
    """The schedule's tick: probe the due accounts, then a pending job for each one that changed
    (every due one with the probe off), in one insert per chunk of account ids."""
    plan = plan_scheduled_syncs(engine, provider=provider, kind=kind, due_before=due_before, now=now)
    with engine.begin() as conn:
        requested = [
            job
            for ids in batches(plan)
            for job in automation_queries.request_syncs(
                conn,
                provider=provider,
                kind=kind,
                requested_by=requested_by,
                last_job_before=due_before,
                account_ids=ids,
            )
        ]
        plan.in_error = automation_queries.count_accounts(conn, provider, AccountStatus.ERROR)
    return requested, plan
