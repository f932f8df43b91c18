"""Google's side of connecting an account: the consent URL, the code exchange (PKCE), the identity
probe, and revoking a grant.

The app's web flow calls ``authorization_url`` (keeps the returned ``code_verifier`` and ``state``
in the user's session), then ``exchange_code`` with the code Google redirected back with; the CLI
(``accounts connect``) does the same around a loopback server. ``accounts.connect`` turns the
credentials into the account row.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow

from monolyth_pipelines import settings
from monolyth_pipelines.google.clients import GoogleClients

DRIVE_READONLY = "https://www.googleapis.com/auth/drive.readonly"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
# What each provider asks for: its own read-only scope only (incremental authorization adds the
# other provider's scope to the same grant when the user connects it later).
PROVIDER_SCOPES: dict[str, tuple[str, ...]] = {"google_drive": (DRIVE_READONLY,), "gmail": (GMAIL_READONLY,)}
# Any of these is enough for the provider's sync (broader scopes include the read-only one).
SUFFICIENT_SCOPES: dict[str, frozenset[str]] = {
    "google_drive": frozenset({DRIVE_READONLY, "https://www.googleapis.com/auth/drive"}),
    "gmail": frozenset(
        {GMAIL_READONLY, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/"}
    ),
}

_env_lock = threading.Lock()


class OAuthFlowError(Exception):
    """The flow could not complete; ``str()`` is one line without any secret."""


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    redirect_uri: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class GoogleIdentity:
    user_id: str  # Drive: permissionId; Gmail: the address, lower-cased (getProfile has no id)
    email: str


def _client(client: settings.OAuthClient | None) -> settings.OAuthClient:
    client = client or settings.oauth_client()
    if client is None:
        raise OAuthFlowError(
            "no OAuth client configured: set MONOLYTH_GOOGLE_CLIENT_ID and MONOLYTH_GOOGLE_CLIENT_SECRET "
            "(or MONOLYTH_GOOGLE_CLIENT_SECRETS_FILE), or pass --client-secrets"
        )
    return client


def _is_loopback_http(uri: str) -> bool:
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _oauthlib_rules(*uris: str) -> Iterator[None]:
    """oauthlib refuses plain http (the emulator on 127.0.0.1) and raises when Google grants more
    scopes than asked (incremental authorization); we check scopes ourselves after the exchange.
    Plain http is allowed for loopback addresses only."""
    wanted = {"OAUTHLIB_RELAX_TOKEN_SCOPE": "1"}
    if all(_is_loopback_http(u) or u.startswith("https://") for u in uris) and any(
        _is_loopback_http(u) for u in uris
    ):
        wanted["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    with _env_lock:
        saved = {k: os.environ.get(k) for k in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _flow(
    provider: str,
    redirect_uri: str,
    client: settings.OAuthClient,
    endpoints: settings.GoogleEndpoints,
    code_verifier: str | None = None,
) -> Flow:
    config = {
        "web": {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "auth_uri": endpoints.auth_uri,
            "token_uri": endpoints.token_uri,
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(
        config,
        scopes=list(PROVIDER_SCOPES[provider]),
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        autogenerate_code_verifier=code_verifier is None,
    )


def authorization_url(
    provider: str,
    redirect_uri: str,
    *,
    client: settings.OAuthClient | None = None,
    endpoints: settings.GoogleEndpoints | None = None,
    login_hint: str | None = None,
    state: str | None = None,
) -> AuthorizationRequest:
    """The consent URL (offline access, PKCE S256, incremental) and what the exchange needs back."""
    endpoints = endpoints or settings.GoogleEndpoints.from_env()
    flow = _flow(provider, redirect_uri, _client(client), endpoints)
    extra = {"login_hint": login_hint} if login_hint else {}
    with _oauthlib_rules(endpoints.auth_uri):
        url, state = flow.authorization_url(
            access_type="offline", include_granted_scopes="true", prompt="consent", state=state, **extra
        )
    assert flow.code_verifier is not None
    return AuthorizationRequest(
        url=url, state=state, redirect_uri=redirect_uri, code_verifier=flow.code_verifier
    )


def check_state(state: str | None, expected_state: str) -> None:
    """The redirect's ``state`` must be the one this flow sent: without it, or with another one,
    the redirect may be an attacker's code planted in the user's browser (login CSRF)."""
    if not expected_state:
        raise OAuthFlowError("no expected state: keep the state authorization_url returned")
    if not state:
        raise OAuthFlowError("the redirect carries no state; start the connect again")
    if not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise OAuthFlowError("the redirect's state does not match this request; start the connect again")


def exchange_code(
    provider: str,
    code: str,
    *,
    redirect_uri: str,
    code_verifier: str,
    client: settings.OAuthClient | None = None,
    endpoints: settings.GoogleEndpoints | None = None,
) -> Credentials:
    """Credentials for the code; the granted scopes are in ``credentials.granted_scopes``."""
    endpoints = endpoints or settings.GoogleEndpoints.from_env()
    flow = _flow(provider, redirect_uri, _client(client), endpoints, code_verifier=code_verifier)
    try:
        with _oauthlib_rules(endpoints.token_uri):
            flow.fetch_token(code=code)
    except Exception as exc:
        # oauthlib's messages quote Google's error (invalid_grant ...), never the code or secret.
        name = getattr(exc, "error", None) or exc.__class__.__name__
        raise OAuthFlowError(f"Google refused the authorization code: {name}") from None
    return flow.credentials


def granted_scopes(credentials: Credentials) -> list[str]:
    scopes = getattr(credentials, "granted_scopes", None) or credentials.scopes or []
    return sorted(scopes.split() if isinstance(scopes, str) else scopes)


def missing_scopes(provider: str, scopes: list[str]) -> list[str]:
    return [] if SUFFICIENT_SCOPES[provider] & set(scopes) else list(PROVIDER_SCOPES[provider])


def probe_identity(
    provider: str, credentials: Credentials, endpoints: settings.GoogleEndpoints | None = None
) -> GoogleIdentity:
    """One cheap call that says whose grant this is (and proves it works)."""
    clients = GoogleClients(credentials, endpoints or settings.GoogleEndpoints.from_env())
    try:
        if provider == "gmail":
            profile = clients.gmail().users().getProfile(userId="me", fields="emailAddress").execute()
            email = profile["emailAddress"]
            return GoogleIdentity(user_id=email.lower(), email=email)
        about = clients.drive().about().get(fields="user(emailAddress,permissionId)").execute()
        return GoogleIdentity(user_id=about["user"]["permissionId"], email=about["user"]["emailAddress"])
    finally:
        clients.close()


def revoke(
    token: str, endpoints: settings.GoogleEndpoints | None = None, timeout: float = 10.0
) -> str | None:
    """Revoke the grant behind ``token`` at Google; None when done, else why not (one line)."""
    endpoints = endpoints or settings.GoogleEndpoints.from_env()
    body = urllib.parse.urlencode({"token": token}).encode()
    request = urllib.request.Request(
        endpoints.revoke_uri,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        return f"the revocation endpoint answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"the revocation endpoint could not be reached ({exc.__class__.__name__})"
