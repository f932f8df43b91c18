"""Connecting emulator accounts the way a deployment does: the consent flow of its OAuth client.

Production connects accounts with ``accounts connect`` or the app's web flow, through the
deployment's client (``MONOLYTH_GOOGLE_CLIENT_ID``/``_SECRET``), and the rows hold no client
secret. So do the tests, by default: ``use_deployment_client`` registers an app client at the
emulator and configures it in the environment (inherited by the Dagster daemon and the run
workers a test starts), and ``connect`` opens the consent URL over HTTP, reads the redirect and
hands the code to ``accounts.connect.exchange_code``.

``grant=EMULATOR_FILE`` is the scripted exception: the emulator's authorized-user dict of the
account's own client, written to the row as it is (a grant the consent flow cannot produce, e.g.
one with only the ``gmail.metadata`` scope).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from monolyth_pipelines import settings
from monolyth_pipelines.accounts import connect as account_connect
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.google import oauth_flow
from monolyth_pipelines.store import accounts, events
from monolyth_pipelines.store.events import Event

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the helper reads the redirect itself
CONSENT = "consent"
EMULATOR_FILE = "emulator_file"


def use_deployment_client(emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> settings.OAuthClient:
    """A new app OAuth client at the (serving) emulator, configured as the deployment's."""
    installed = emulator.oauth_client_secrets()["installed"]
    monkeypatch.setenv("MONOLYTH_GOOGLE_CLIENT_ID", installed["client_id"])
    monkeypatch.setenv("MONOLYTH_GOOGLE_CLIENT_SECRET", installed["client_secret"])
    monkeypatch.delenv("MONOLYTH_GOOGLE_CLIENT_SECRETS_FILE", raising=False)
    return settings.OAuthClient(installed["client_id"], installed["client_secret"])


@contextmanager
def serve_as_deployment(emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Serve the emulator and point this process's Google endpoints and OAuth client at it, as a
    deployment is configured; yields its base URL."""
    with emulator.serve() as base_url:
        monkeypatch.setenv("MONOLYTH_GOOGLE_API_ENDPOINT", base_url)
        monkeypatch.setenv("MONOLYTH_GOOGLE_TOKEN_URI", f"{base_url}/token")
        use_deployment_client(emulator, monkeypatch)
        yield base_url


@dataclass(frozen=True)
class Consent:
    """What the browser brings back from the consent page, and what the flow kept for it."""

    code: str
    state: str | None
    scope: str
    request: oauth_flow.AuthorizationRequest


def consent(provider: str, email: str | None = None, *, redirect_uri: str = REDIRECT_URI) -> Consent:
    """The browser's part: open the consent URL (as the deployment's client), follow no redirect."""
    request = oauth_flow.authorization_url(provider, redirect_uri, login_hint=email)
    answer = requests.get(request.url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(redirect_uri), location
    params = {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}
    return Consent(params["code"], params.get("state"), params.get("scope", ""), request)


def exchange(
    engine: sa.Engine, got: Consent, *, provider: str, owner_id: uuid.UUID
) -> account_connect.ConnectResult:
    """The app's second half, with the state the redirect brought back checked."""
    return account_connect.exchange_code(
        engine,
        provider=provider,
        owner_id=owner_id,
        code=got.code,
        redirect_uri=got.request.redirect_uri,
        code_verifier=got.request.code_verifier,
        state=got.state,
        expected_state=got.request.state,
    )


def connect(
    engine: sa.Engine,
    emulator: GoogleEmulator,
    email: str,
    provider: str = "google_drive",
    *,
    owner_id: uuid.UUID | None = None,
    grant: str = CONSENT,
) -> uuid.UUID:
    """Connect the emulator's ``email`` for ``provider``; returns the account id.

    The connect's own calls (the code exchange, the identity probe) are taken out of the account's
    emulator stats, so a test counts only what its syncs ask of Google.
    """
    owner_id = owner_id or uuid.uuid4()
    if grant == EMULATOR_FILE:
        account_id = _connect_emulator_file(engine, emulator, email, provider, owner_id)
    else:
        assert grant == CONSENT, grant
        client = settings.oauth_client()
        assert client is not None and emulator.oauth.consent.client_secret(client.client_id), (
            "call tests.grants.use_deployment_client(emulator, monkeypatch) where the emulator is served"
        )
        result = exchange(engine, consent(provider, email), provider=provider, owner_id=owner_id)
        assert result.status == "connected", result.message
        account_id = result.account_id
    emulator.reset_stats(email)
    return account_id


def _connect_emulator_file(
    engine: sa.Engine, emulator: GoogleEmulator, email: str, provider: str, owner_id: uuid.UUID
) -> uuid.UUID:
    info = emulator.account(email).authorized_user_info(token_uri=emulator.token_uri)
    with engine.begin() as conn:
        account_id = accounts.create_account(conn, owner_id=owner_id, provider=provider, token_json=info)
        events.log_event(
            conn,
            Event.ACCOUNT_CONNECTED,
            {"provider": provider, "account_id": account_id, "scopes": list(info.get("scopes", []))},
        )
    return account_id


def client_secrets_of(token_json: dict) -> list[str]:
    """The client secrets a grant is used with: its own, or the deployment's (never stored)."""
    own = token_json.get("client_secret")
    deployment = settings.oauth_client()
    return [own] if own else [deployment.client_secret] if deployment else []
