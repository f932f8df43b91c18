"""Connecting a whole Workspace domain with a service account (domain-wide delegation).

``connect_domain`` stores the key file once (connector_domains, encrypted) and runs the same
directory sync that ``sync_domain`` runs daily and on demand: impersonate the admin with the
provider's scopes and the Directory read-only scope (which proves the delegation), list the
users page by page, and per page create or reconnect the active users' accounts in bulk (each
with a ``connector_account_connected`` event). After a complete listing, accounts of users who
are gone, suspended or archived are disconnected like ``accounts disconnect`` without
``--purge`` (data kept), all together in set-based writes (``store.departures``). A key that
stops working puts every account of the domain in ``needs_reauth`` with one message, in one
statement, and nothing retries until the key is rotated (``rotate_domain_key``) or the
delegation is restored and the directory synced again. New accounts get their first sync as any
newly connected account does (the partition sensor).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
import sqlalchemy as sa

from monolyth_pipelines import settings
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.google.credentials import service_account_credentials
from monolyth_pipelines.google.directory import DIRECTORY_USER_READONLY, DirectoryClient, DirectoryUser
from monolyth_pipelines.google.oauth_flow import PROVIDER_SCOPES
from monolyth_pipelines.google.retry import Backoff, call_with_retries
from monolyth_pipelines.store import automation_queries, departures, domains
from monolyth_pipelines.store.schema import AccountStatus, AccountStatusReason, JobKind, Provider
from monolyth_pipelines.store.timeutil import utcnow
from monolyth_pipelines.store.token_crypto import TokenKeyError

KIND_BY_PROVIDER = {
    Provider.GOOGLE_DRIVE.value: JobKind.DRIVE_IMPORT.value,
    Provider.GMAIL.value: JobKind.GMAIL_IMPORT.value,
}
ADMIN_CONSOLE_PATH = "Security > Access and data control > API controls > Manage Domain Wide Delegation"
# The token endpoint's answers that mean "this client id is not authorised for these scopes".
_NOT_DELEGATED = frozenset({"unauthorized_client", "access_denied"})
_KEY_FIELDS = ("type", "client_email", "client_id", "private_key", "private_key_id")


@dataclass
class DomainResult:
    domain_id: uuid.UUID
    status: str  # connected | error
    reason: str | None = None
    message: str | None = None
    active_users: int = 0
    created: int = 0
    reconnected: int = 0
    disconnected: int = 0
    google_requests: int = 0


def check_key_file(key_info: Any) -> dict[str, Any]:
    """A service-account JSON key, or ``ValueError`` saying what is wrong (never quoting it)."""
    if not isinstance(key_info, dict) or key_info.get("type") != "service_account":
        raise ValueError('not a service-account key file (its "type" must be "service_account")')
    missing = [k for k in _KEY_FIELDS if not key_info.get(k)]
    if missing:
        raise ValueError(f"the service-account key file lacks {', '.join(missing)}")
    return key_info


def provider_scopes(provider: str) -> list[str]:
    return list(PROVIDER_SCOPES[provider])


def identity_of(provider: str, user: DirectoryUser) -> str:
    """connector_accounts.external_user_id as the OAuth connect writes it, so a user connected by
    OAuth before is the same row: Drive's permissionId is the user's numeric id; Gmail's is the
    address, lower-cased."""
    return user.email.lower() if provider == Provider.GMAIL.value else user.id


def not_delegated_message(domain: str, client_id: str, scopes: list[str], owner_id: uuid.UUID) -> str:
    return (
        f"the Workspace domain {domain} has not authorised the service account (client id {client_id}) "
        f"for these scopes: {', '.join(scopes)}. A super admin grants them in the Admin console "
        f"({ADMIN_CONSOLE_PATH} > Add new): client ID {client_id}, OAuth scopes {','.join(scopes)}; "
        f"then `monolyth-connectors accounts sync-domain --owner {owner_id}` (the key is kept)"
    )


def connect_domain(
    engine: sa.Engine,
    *,
    provider: str,
    owner_id: uuid.UUID,
    key_info: dict[str, Any],
    admin_email: str,
    users_query: str | None = None,
    endpoints: settings.GoogleEndpoints | None = None,
    policy: Backoff | None = None,
    terminate_run: Callable[[str], bool] | None = None,
) -> DomainResult:
    if provider not in KIND_BY_PROVIDER:
        raise ValueError(f"unknown provider {provider!r}")
    check_key_file(key_info)
    if "@" not in admin_email:
        raise ValueError(f"--admin-email must be an address of the domain, not {admin_email!r}")
    with engine.begin() as conn:
        domain_id, _ = domains.save_domain(
            conn,
            owner_id=owner_id,
            provider=provider,
            domain=admin_email.rsplit("@", 1)[1].lower(),
            admin_email=admin_email,
            key_info=key_info,
            users_query=users_query,
        )
    return sync_domain(engine, domain_id, endpoints=endpoints, policy=policy, terminate_run=terminate_run)


def rotate_domain_key(
    engine: sa.Engine,
    domain_id: uuid.UUID,
    key_info: dict[str, Any],
    *,
    endpoints: settings.GoogleEndpoints | None = None,
    policy: Backoff | None = None,
    terminate_run: Callable[[str], bool] | None = None,
) -> DomainResult:
    """Replace the stored key (the old one can then be deleted in the Cloud console), and sync the
    directory with the new one: accounts a dead key left in needs_reauth come back."""
    check_key_file(key_info)
    with engine.begin() as conn:
        if domains.get_domain(conn, domain_id) is None:
            raise ValueError(f"no domain {domain_id}")
        domains.replace_key(conn, domain_id, key_info)
    return sync_domain(engine, domain_id, endpoints=endpoints, policy=policy, terminate_run=terminate_run)


def sync_domain(
    engine: sa.Engine,
    domain_id: uuid.UUID,
    *,
    endpoints: settings.GoogleEndpoints | None = None,
    policy: Backoff | None = None,
    terminate_run: Callable[[str], bool] | None = None,
) -> DomainResult:
    """Re-list the directory and make the domain's accounts follow it (see the module text)."""
    endpoints = endpoints or settings.GoogleEndpoints.from_env()
    policy = policy or _policy()
    with engine.connect() as conn:
        row = domains.get_domain(conn, domain_id)
        if row is None:
            raise ValueError(f"no domain {domain_id}")
        key = domains.domain_key(conn, domain_id)
    scopes = provider_scopes(row.provider)
    asked = [*scopes, DIRECTORY_USER_READONLY]
    admin = service_account_credentials(
        key, subject=row.admin_email, scopes=asked, token_uri=endpoints.token_uri
    )
    client = DirectoryClient(admin, endpoints)
    result = DomainResult(domain_id, AccountStatus.CONNECTED.value)
    try:
        # The exchange itself is the delegation check: Google refuses a scope the admin did not grant.
        call_with_retries(
            lambda: admin.refresh(google_auth_httplib2.Request(client.transport)), policy=policy
        )
        seen = _list_and_upsert(engine, row, client, scopes, policy, result)
    except SyncError as error:
        result.google_requests = client.requests
        return _key_failed(engine, row, error, asked, result)
    finally:
        client.close()
    result.google_requests = client.requests
    if seen is None:
        result.status, result.reason = AccountStatus.ERROR.value, "empty_directory"
        result.message = "the directory listing returned no users at all; no account was disconnected"
    else:
        result.disconnected = _disconnect_departed(engine, domain_id, seen, endpoints, terminate_run)
    with engine.begin() as conn:
        domains.set_status(
            conn,
            domain_id,
            result.status,
            reason=result.reason,
            message=result.message,
            listed=seen is not None,
        )
    return result


def _policy() -> Backoff:
    retry = settings.RetrySettings.from_env()
    return Backoff(
        base=retry.call_base_seconds, cap=retry.call_cap_seconds, max_attempts=retry.call_max_attempts
    )


def _list_and_upsert(
    engine: sa.Engine,
    row: domains.DomainRow,
    client: DirectoryClient,
    scopes: list[str],
    policy: Backoff,
    result: DomainResult,
) -> set[str] | None:
    """One transaction per page; returns the identities of the active users (None: no users)."""
    active: set[str] = set()
    listed_any = False
    for page in client.user_pages(row.users_query, policy):
        listed_any = listed_any or bool(page)
        members = [domains.Member(identity_of(row.provider, u), u.email) for u in page if u.active]
        members = [m for m in members if m.identity not in active]  # a user listed twice counts once
        active.update(m.identity for m in members)
        with engine.begin() as conn:
            existing = domains.accounts_by_identity(
                conn, owner_id=row.owner_id, provider=row.provider, identities=[m.identity for m in members]
            )
            new = [m for m in members if m.identity not in existing]
            back = [
                (acct.id, m)
                for m in members
                if (acct := existing.get(m.identity)) is not None
                and (acct.status != AccountStatus.CONNECTED or acct.domain_id != row.id)
            ]
            domains.insert_accounts(
                conn,
                owner_id=row.owner_id,
                provider=row.provider,
                domain_id=row.id,
                members=new,
                scopes=scopes,
            )
            domains.reconnect_accounts(
                conn,
                provider=row.provider,
                owner_id=row.owner_id,
                domain_id=row.id,
                found=back,
                scopes=scopes,
            )
            if back:
                # Accounts that had jobs: the first-sync rule skips them, so ask now (as a reconnect does).
                automation_queries.request_syncs(
                    conn,
                    provider=row.provider,
                    kind=KIND_BY_PROVIDER[row.provider],
                    requested_by="domain_sync",
                    last_job_before=utcnow(),
                    account_ids=[account_id for account_id, _ in back],
                )
        result.created += len(new)
        result.reconnected += len(back)
    result.active_users = len(active)
    return active if listed_any else None


def _disconnect_departed(
    engine: sa.Engine,
    domain_id: uuid.UUID,
    active: set[str],
    endpoints: settings.GoogleEndpoints,
    terminate_run: Callable[[str], bool] | None,
) -> int:
    """Accounts whose user left the listing (deleted, suspended, archived, outside the query):
    what ``accounts disconnect`` without ``--purge`` does to one, done to all of them at once (a
    reorganisation can take thousands). No grant is revoked: a domain account holds none (an
    OAuth reconnect takes the account out of the domain), the key is the domain's."""
    from monolyth_pipelines.accounts.disconnect import DISCONNECTED, REASON
    from monolyth_pipelines.sync.push import stop_channels_of

    with engine.connect() as conn:
        gone = [
            a.id
            for a in domains.domain_accounts(conn, domain_id)
            if a.status != AccountStatus.DISCONNECTED and a.external_user_id not in active
        ]
    if not gone:
        return 0
    # While the grants are still there: Google stops notifying about these accounts.
    stop_channels_of(gone, engine=engine, endpoints=endpoints)
    with engine.begin() as conn:
        if terminate_run is not None:
            # A pending job may already be handed to a queued run (the sensor attached it).
            for run_id in departures.open_run_ids(conn, gone):
                terminate_run(run_id)
        departures.disconnect_accounts(conn, gone, error_code=DISCONNECTED, reason=REASON)
    return len(gone)


def _key_failed(
    engine: sa.Engine, row: domains.DomainRow, error: SyncError, asked: list[str], result: DomainResult
) -> DomainResult:
    """The admin could not be impersonated or the listing failed: say why, once, for the domain."""
    name = (error.reason or "").lower()
    key_problem = error.code in (ErrorCode.AUTH_REVOKED, ErrorCode.OAUTH_CLIENT_INVALID)
    if error.retryable or not key_problem:
        # Google is away, or the admin may not list users: nothing says the key is bad, so the
        # accounts stay as they are and the domain says what happened.
        result.status, result.reason = AccountStatus.ERROR.value, str(error.code)
        result.message = f"listing the directory of {row.domain} as {row.admin_email} failed: {error.message}"
        with engine.begin() as conn:
            domains.set_status(
                conn, row.id, AccountStatus.ERROR.value, reason=result.reason, message=result.message
            )
        return result
    if name in _NOT_DELEGATED:
        reason, message = (
            AccountStatusReason.NOT_DELEGATED.value,
            not_delegated_message(row.domain, row.client_id, asked, row.owner_id),
        )
    else:
        reason = AccountStatusReason.NEEDS_REAUTH.value
        message = (
            f"the service-account key of {row.domain} (client id {row.client_id}) no longer works "
            f"({error.code}: {error.message}); replace it with "
            "`monolyth-connectors accounts rotate-domain-key`"
        )
    with engine.begin() as conn:
        domains.set_status(conn, row.id, AccountStatus.ERROR.value, reason=reason, message=message)
        domains.mark_needs_reauth(conn, row.id, message)
    result.status, result.reason, result.message = AccountStatus.ERROR.value, reason, message
    return result


def sync_all_domains(
    engine: sa.Engine,
    *,
    endpoints: settings.GoogleEndpoints | None = None,
    terminate_run: Callable[[str], bool] | None = None,
) -> list[DomainResult]:
    """The daily directory sync: every domain that is not disconnected, each on its own (one
    domain's unreadable key or outage does not stop the others)."""
    with engine.connect() as conn:
        found = [d for d in domains.list_domains(conn) if d.status != AccountStatus.DISCONNECTED]
    results = []
    for row in found:
        try:
            results.append(sync_domain(engine, row.id, endpoints=endpoints, terminate_run=terminate_run))
        except TokenKeyError as exc:
            results.append(DomainResult(row.id, AccountStatus.ERROR.value, "token_key_unavailable", str(exc)))
    return results
