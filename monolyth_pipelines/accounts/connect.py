"""Create or update an account from a Google grant (connectors-v1.md §2.1).

Whatever produced the grant (the OAuth code flow, or a token file for scripted setups), one path
stores it: probe who the Google user is and which scopes were granted, then update the row of the
same owner + provider + Google user, or insert one. The status follows the result: ``connected``,
or ``error`` with a reason (``missing_scopes`` / ``probe_failed``) and no connected event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from google.oauth2.credentials import Credentials

from monolyth_pipelines import settings
from monolyth_pipelines.google import oauth_flow
from monolyth_pipelines.google.credentials import credentials_for_grant
from monolyth_pipelines.google.errors import classify_exception
from monolyth_pipelines.store import accounts, events, jobs
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.schema import AccountStatus, AccountStatusReason, JobKind, Provider

_EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%S"
KIND_BY_PROVIDER = {
    Provider.GOOGLE_DRIVE.value: JobKind.DRIVE_IMPORT.value,
    Provider.GMAIL.value: JobKind.GMAIL_IMPORT.value,
}


@dataclass(frozen=True)
class ConnectResult:
    account_id: uuid.UUID
    status: str
    created: bool
    scopes: list[str]
    email: str | None
    reason: str | None = None
    message: str | None = None


def exchange_code(
    engine: sa.Engine,
    *,
    provider: str,
    owner_id: uuid.UUID,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    state: str | None,
    expected_state: str,
    client: settings.OAuthClient | None = None,
    endpoints: settings.GoogleEndpoints | None = None,
) -> ConnectResult:
    """The app's web flow, second half: the code Google redirected with → the account row.

    ``state`` is what the redirect brought back (None when it had none), ``expected_state`` what
    ``authorization_url`` returned for this user's session: a mismatch raises ``OAuthFlowError``
    before the code is used, so a redirect forged into someone's browser connects nothing.
    """
    oauth_flow.check_state(state, expected_state)
    credentials = oauth_flow.exchange_code(
        provider,
        code,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        client=client,
        endpoints=endpoints,
    )
    return connect_credentials(
        engine, provider=provider, owner_id=owner_id, credentials=credentials, endpoints=endpoints
    )


def connect_token_info(
    engine: sa.Engine,
    *,
    provider: str,
    owner_id: uuid.UUID,
    token_info: dict[str, Any],
    endpoints: settings.GoogleEndpoints | None = None,
) -> ConnectResult:
    """``accounts add --token-file``: an authorized-user JSON through the same path."""
    endpoints = endpoints or settings.GoogleEndpoints.from_env()
    credentials = credentials_for_grant(token_info, endpoints)
    return connect_credentials(
        engine, provider=provider, owner_id=owner_id, credentials=credentials, endpoints=endpoints
    )


def stored_token_json(credentials: Credentials, scopes: list[str]) -> dict[str, Any]:
    """What the row keeps. The client secret only when the grant belongs to another OAuth client
    than the deployment's (rows of the deployment's client get it from its configuration)."""
    info: dict[str, Any] = {
        "token": credentials.token,
        "refresh_token": credentials.refresh_token,
        "scopes": scopes,
        "expiry": credentials.expiry.strftime(_EXPIRY_FORMAT) if credentials.expiry else None,
        "client_id": credentials.client_id,
    }
    deployment = settings.oauth_client()
    if deployment is None or deployment.client_id != credentials.client_id:
        info["client_secret"] = credentials.client_secret
    return info


def connect_credentials(
    engine: sa.Engine,
    *,
    provider: str,
    owner_id: uuid.UUID,
    credentials: Credentials,
    endpoints: settings.GoogleEndpoints | None = None,
) -> ConnectResult:
    if provider not in {p.value for p in Provider}:
        raise ValueError(f"unknown provider {provider!r}")
    scopes = oauth_flow.granted_scopes(credentials)
    reason: str | None = None
    message: str | None = None
    missing = oauth_flow.missing_scopes(provider, scopes)
    if missing:
        reason = AccountStatusReason.MISSING_SCOPES
        message = (
            f"Google did not grant {', '.join(missing)}: connect again and allow read access "
            f"(granted: {', '.join(scopes) or 'nothing'})"
        )
    identity: oauth_flow.GoogleIdentity | None = None
    try:
        identity = oauth_flow.probe_identity(provider, credentials, endpoints)
    except Exception as exc:  # any failure of the probe is the connect's outcome, not a crash
        error = classify_exception(exc)
        if reason is None:
            reason = AccountStatusReason.PROBE_FAILED
            message = f"checking the grant with Google failed: {error.code}: {error.message}"
    status = AccountStatus.CONNECTED if reason is None else AccountStatus.ERROR
    # The probe may have refreshed the access token: store the newest.
    token_json = stored_token_json(credentials, scopes)
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                existing = (
                    accounts.find_by_identity(
                        conn, owner_id=owner_id, provider=provider, external_user_id=identity.user_id
                    )
                    if identity
                    else None
                )
                if existing is not None:
                    account_id = existing.id
                    accounts.update_connection(
                        conn,
                        account_id,
                        token_json=token_json,
                        status=status,
                        status_reason=reason,
                        status_message=message,
                        external_email=identity.email if identity else None,
                    )
                else:
                    account_id = accounts.create_account(
                        conn,
                        owner_id=owner_id,
                        provider=provider,
                        token_json=token_json,
                        status=status,
                        external_user_id=identity.user_id if identity else None,
                        external_email=identity.email if identity else None,
                        status_reason=reason,
                        status_message=message,
                    )
                if status == AccountStatus.CONNECTED and existing is not None and existing.status != status:
                    # A reconnect after an error or a disconnect: sync again now rather than at the next
                    # schedule tick (the first-sync rule only covers accounts that never had a job).
                    jobs.request_sync(conn, account_id, KIND_BY_PROVIDER[provider])
                if status == AccountStatus.CONNECTED:
                    events.log_event(
                        conn,
                        Event.ACCOUNT_CONNECTED,
                        {"provider": provider, "account_id": account_id, "scopes": scopes},
                    )
            break
        except sa.exc.IntegrityError:
            # Two connects of the same Google user raced and the other inserted the row first:
            # the second attempt finds it and updates it.
            if attempt == 2 or identity is None:
                raise
    return ConnectResult(
        account_id=account_id,
        status=status,
        created=existing is None,
        scopes=scopes,
        email=identity.email if identity else None,
        reason=reason,
        message=message,
    )
