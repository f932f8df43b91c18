"""Disconnecting an account: revoke the grant at Google, forget the tokens, stop its syncs.

Order matters: the grant is revoked first (a failure is reported, never fatal: the user asked to
be disconnected), then one transaction clears the tokens, sets ``disconnected``, fails the
account's pending jobs and logs ``connector_account_disconnected``; a running job's Dagster run is
terminated through ``terminate_run`` (the caller's, so this module needs no Dagster). The
schedule and the partition sensor only pick ``connected`` accounts, so nothing starts for it again
until a reconnect, which keeps the stored cursors (unless ``purge`` deleted them).

``purge`` runs after that transaction committed, in its own: the run is stopped first (its job
is failed, so any page still in flight fails at its fence), then the purge waits for such a page
to end before deleting (``store.purge``). A purge that fails leaves the account disconnected
with its tokens gone, never ``connected`` with a revoked grant, and running it again finishes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from monolyth_pipelines import settings
from monolyth_pipelines.google import oauth_flow
from monolyth_pipelines.google.credentials import is_domain_grant
from monolyth_pipelines.insights.build import rebuild_sync_runs
from monolyth_pipelines.store import accounts, events, jobs
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.purge import purge_account_data
from monolyth_pipelines.store.schema import AccountStatus, JobStatus
from monolyth_pipelines.store.token_crypto import TokenKeyError
from monolyth_pipelines.sync.push import stop_channels
from monolyth_pipelines.sync.run import reap_job

DISCONNECTED = "account_disconnected"
REASON = "the account was disconnected; nothing more is synced for it"


@dataclass
class DisconnectResult:
    account_id: uuid.UUID
    revoked: bool
    revoke_error: str | None = None
    failed_jobs: list[uuid.UUID] = field(default_factory=list)
    terminated_runs: list[str] = field(default_factory=list)
    purged: dict[str, int] = field(default_factory=dict)
    already: bool = False


class AccountNotFound(Exception):
    pass


def disconnect(
    engine: sa.Engine,
    account_id: uuid.UUID,
    *,
    purge: bool = False,
    terminate_run: Callable[[str], bool] | None = None,
    endpoints: settings.GoogleEndpoints | None = None,
) -> DisconnectResult:
    with engine.connect() as conn:
        account = accounts.get_account(conn, account_id)
        if account is None:
            raise AccountNotFound(f"no account {account_id}")
        try:
            token_json = accounts.get_token_json(conn, account_id)
            key_problem = None
        except TokenKeyError as exc:
            token_json, key_problem = None, str(exc)
    result = DisconnectResult(account_id, revoked=False)
    # While the tokens are still there: Google stops notifying about this account.
    stop_channels(account_id, engine=engine, endpoints=endpoints)
    grant = (token_json or {}).get("refresh_token") or (token_json or {}).get("token")
    if is_domain_grant(token_json):
        pass  # a Workspace domain's account: the key is the domain's, there is no user grant to revoke
    elif grant and _grant_shared(engine, account, token_json or {}):
        # Google's revoke ends the user's whole grant to the client (Drive and Gmail scopes of an
        # incremental consent alike): another connected account on it would lose access too.
        result.revoke_error = "not revoked: another connected account holds the same Google grant"
    elif grant:
        result.revoke_error = oauth_flow.revoke(grant, endpoints)
        result.revoked = result.revoke_error is None
    elif key_problem:
        result.revoke_error = f"the grant was not revoked: {key_problem}"
    elif account.status != AccountStatus.DISCONNECTED:
        result.revoke_error = "no stored grant to revoke"
    with engine.begin() as conn:
        accounts.clear_tokens(conn, account_id)
        result.already = account.status == AccountStatus.DISCONNECTED
        accounts.set_status(conn, account_id, AccountStatus.DISCONNECTED)
        for job in jobs.jobs_for_account(conn, account_id):
            is_open = job.status in (JobStatus.PENDING, JobStatus.RUNNING)
            # A pending job may already be handed to a queued run (the sensor attached it).
            if is_open and job.run_id and terminate_run is not None and terminate_run(job.run_id):
                result.terminated_runs.append(job.run_id)
            if is_open and reap_job(conn, job, REASON, error_code=DISCONNECTED):
                result.failed_jobs.append(job.id)
        if not result.already:
            events.log_event(
                conn, Event.ACCOUNT_DISCONNECTED, {"provider": account.provider, "account_id": account_id}
            )
    if purge:
        # Its own transaction, after the run was stopped: never one that holds the job row while
        # waiting for a page's file rows (the page waits for the job row: a deadlock).
        with engine.begin() as conn:
            result.purged, days = purge_account_data(conn, account_id)
            rebuild_sync_runs(conn, days)
    return result


def _client_of(token_json: dict) -> str | None:
    if token_json.get("client_secret"):
        return token_json.get("client_id")
    deployment = settings.oauth_client()
    return token_json.get("client_id") or (deployment.client_id if deployment else None)


def _grant_shared(engine: sa.Engine, account: accounts.Account, token_json: dict) -> bool:
    """Whether another connected account holds a grant of the same Google user and OAuth client."""
    client = _client_of(token_json)
    with engine.connect() as conn:
        for other_id in accounts.others_of_google_user(conn, account, [AccountStatus.CONNECTED]):
            try:
                other = accounts.get_token_json(conn, other_id)
            except TokenKeyError:
                continue
            if other and _client_of(other) == client:
                return True
    return False
