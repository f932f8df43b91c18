"""OAuth's authorization-code flow as Google runs it, for an app's own OAuth client.

``GET /o/oauth2/auth`` consents at once (no page to click) and redirects to ``redirect_uri`` with a
code; ``POST /token`` with ``grant_type=authorization_code`` exchanges the code once, checking the
client, the redirect URI and the PKCE verifier; ``POST /revoke`` revokes a grant and records it.
Who consents and which of the requested scopes they grant is set by a test (``consent_as``, or
``login_hint`` in the URL); by default the only account, granting everything asked.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass(slots=True)
class AppClient:
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(slots=True)
class AppGrant:
    """One user's consent to one app client: scopes accumulate with incremental authorization."""

    email: str
    client_id: str
    scopes: tuple[str, ...]
    refresh_token: str = field(repr=False)
    revoked: bool = False


@dataclass(slots=True)
class _PendingCode:
    client_id: str
    redirect_uri: str
    email: str
    scopes: tuple[str, ...]
    challenge: str | None
    method: str


@dataclass(slots=True)
class ConsentPlan:
    email: str | None = None
    granted_scopes: tuple[str, ...] | None = None  # None: everything requested


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _error(status: int, error: str, description: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": description}


class ConsentServer:
    def __init__(self, accounts: Callable[[], Sequence[str]], clock: Callable[[], float]) -> None:
        self._accounts = accounts
        self._clock = clock
        self._lock = threading.Lock()
        self.clients: dict[str, AppClient] = {}
        self.grants: dict[tuple[str, str], AppGrant] = {}  # (client_id, email)
        self.by_refresh: dict[str, AppGrant] = {}
        self._codes: dict[str, _PendingCode] = {}
        self.plan = ConsentPlan()
        self.revocations: list[dict[str, Any]] = []
        self.exchanges = 0

    def register_client(self) -> AppClient:
        client = AppClient(
            client_id=f"{secrets.randbelow(10**12):012d}-app{secrets.token_hex(8)}.apps.googleusercontent.com",
            client_secret="GOCSPX-" + secrets.token_urlsafe(21),
        )
        with self._lock:
            self.clients[client.client_id] = client
        return client

    def consent_as(self, email: str | None = None, granted_scopes: Sequence[str] | None = None) -> None:
        """Who the next consents are given by, and which scopes they grant (None: all requested)."""
        self.plan = ConsentPlan(email, tuple(granted_scopes) if granted_scopes is not None else None)

    # --- GET /o/oauth2/auth ---------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, Any] | str]:
        """(302, redirect URL) or (400, error JSON)."""
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return _error(400, "invalid_client", "The OAuth client was not found.")
        redirect_uri = query.get("redirect_uri", "")
        if not urlsplit(redirect_uri).scheme:
            return _error(400, "invalid_request", "Missing required parameter: redirect_uri")
        if query.get("response_type") != "code":
            return _error(400, "unsupported_response_type", "Only response_type=code is supported")
        requested = tuple(query.get("scope", "").split())
        if not requested:
            return _error(400, "invalid_request", "Missing required parameter: scope")
        method = query.get("code_challenge_method", "plain")
        if method not in ("plain", "S256"):
            return _error(400, "invalid_request", f"Invalid code_challenge_method: {method}")
        email = self.plan.email or query.get("login_hint")
        known = list(self._accounts())
        if email is None and len(known) == 1:
            email = known[0]
        if email not in known:
            return _error(
                400, "invalid_request", "No emulated user to consent (set consent_as or login_hint)"
            )
        granted = (
            requested
            if self.plan.granted_scopes is None
            else tuple(s for s in requested if s in self.plan.granted_scopes)
        )
        with self._lock:
            previous = self.grants.get((client.client_id, email))
            if query.get("include_granted_scopes") == "true" and previous and not previous.revoked:
                granted = tuple(dict.fromkeys(previous.scopes + granted))
            code = "4/emu" + secrets.token_urlsafe(32)
            self._codes[code] = _PendingCode(
                client.client_id, redirect_uri, email, granted, query.get("code_challenge"), method
            )
        answer = {"code": code, "scope": " ".join(granted)}
        if "state" in query:
            answer["state"] = query["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return 302, f"{redirect_uri}{sep}{urlencode(answer)}"

    # --- POST /token, grant_type=authorization_code ---------------------------------------------

    def exchange(
        self, form: dict[str, str], client_id: str | None, client_secret: str | None
    ) -> tuple[int, dict[str, Any], str | None]:
        client = self.clients.get(client_id or "")
        if client is None or client.client_secret != client_secret:
            return (*_error(401, "invalid_client", "Unauthorized"), None)
        with self._lock:
            pending = self._codes.pop(form.get("code", ""), None)
        if pending is None or pending.client_id != client.client_id:
            return (*_error(400, "invalid_grant", "Malformed auth code."), None)
        if form.get("redirect_uri") != pending.redirect_uri:
            return (*_error(400, "redirect_uri_mismatch", "Bad Request"), pending.email)
        if pending.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return (*_error(400, "invalid_grant", "Missing code verifier."), pending.email)
            expected = pkce_challenge(verifier) if pending.method == "S256" else verifier
            if not secrets.compare_digest(expected, pending.challenge):
                return (*_error(400, "invalid_grant", "Invalid code verifier."), pending.email)
        with self._lock:
            grant = AppGrant(
                pending.email, client.client_id, pending.scopes, "1//emuapp" + secrets.token_urlsafe(48)
            )
            self.grants[(client.client_id, pending.email)] = grant
            self.by_refresh[grant.refresh_token] = grant
            self.exchanges += 1
        return 200, {"refresh_token": grant.refresh_token, "scope": " ".join(grant.scopes)}, grant.email

    def refresh_grant(self, refresh_token: str) -> AppGrant | None:
        return self.by_refresh.get(refresh_token)

    def client_secret(self, client_id: str | None) -> str | None:
        client = self.clients.get(client_id or "")
        return client.client_secret if client else None

    # --- POST /revoke ---------------------------------------------------------------------------

    def record_revocation(self, email: str | None, client_id: str | None, kind: str, ok: bool) -> None:
        # The token itself is never recorded: only whose it was.
        with self._lock:
            self.revocations.append(
                {"email": email, "client_id": client_id, "token_type": kind, "ok": ok, "at": self._clock()}
            )

    def revoke_grant(self, client_id: str, email: str) -> None:
        """Every refresh token of ``email``'s grant to ``client_id`` dies (each consent issued one)."""
        with self._lock:
            for grant in self.by_refresh.values():
                if grant.client_id == client_id and grant.email == email:
                    grant.revoked = True

    def revoke_email(self, email: str) -> None:
        with self._lock:
            for grant in self.by_refresh.values():
                if grant.email == email:
                    grant.revoked = True


def revoke_form(body: bytes, query: str) -> str | None:
    """The token a revocation request names (form body, or ``?token=``)."""
    for source in (body.decode("utf-8", "replace"), query):
        values = parse_qs(source).get("token")
        if values:
            return values[-1]
    return None
