"""OAuth: per-account clients and refresh tokens, access tokens, and Google's token endpoint.

Access tokens identify the account, so one emulator serves many accounts. Secrets are random
per account (``secrets``), never derived from the corpus seed, and never logged.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from monolyth_pipelines.emulator.consent import AppGrant, ConsentServer
from monolyth_pipelines.emulator.errors import insufficient_permissions, unauthenticated

DRIVE_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/drive.readonly",
        "https://www.googleapis.com/auth/drive.metadata",
        "https://www.googleapis.com/auth/drive.metadata.readonly",
        "https://www.googleapis.com/auth/drive.file",
    }
)
DRIVE_CONTENT_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/drive.readonly",
        "https://www.googleapis.com/auth/drive.file",
    }
)
GMAIL_METADATA_SCOPE = "https://www.googleapis.com/auth/gmail.metadata"
GMAIL_SCOPES = frozenset(
    {
        "https://mail.google.com/",
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.modify",
        GMAIL_METADATA_SCOPE,
    }
)
DEFAULT_SCOPES: tuple[str, ...] = (
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/gmail.readonly",
)


@dataclass(slots=True)
class Grant:
    """One account's consent: its OAuth client and refresh token."""

    email: str
    client_id: str
    client_secret: str
    refresh_token: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass(slots=True)
class AccessToken:
    email: str
    expires_at: float
    scopes: frozenset[str] = field(default_factory=frozenset)
    # The OAuth client it was issued to: a revocation ends the tokens of one user + client grant.
    client_id: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who an API call runs as."""

    email: str
    scopes: frozenset[str]


class OAuthServer:
    def __init__(self, clock: Callable[[], float], lifetime: float) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}  # by email
        self._by_refresh: dict[str, Grant] = {}
        self._tokens: dict[str, AccessToken] = {}
        # App OAuth clients and their authorization-code grants (emulator/consent.py).
        self.consent = ConsentServer(lambda: list(self._grants), clock)

    def register(self, email: str, scopes: Sequence[str]) -> Grant:
        with self._lock:
            grant = Grant(
                email=email,
                client_id=f"{secrets.randbelow(10**12):012d}-emu{secrets.token_hex(8)}.apps.googleusercontent.com",
                client_secret="GOCSPX-" + secrets.token_urlsafe(21),
                refresh_token="1//emu" + secrets.token_urlsafe(48),
                scopes=tuple(scopes),
            )
            self._grants[email] = grant
            self._by_refresh[grant.refresh_token] = grant
            return grant

    def grant(self, email: str) -> Grant:
        return self._grants[email]

    def reauthorize(self, email: str) -> Grant:
        """The user consents again: a new refresh token, the old one stays dead."""
        with self._lock:
            grant = self._grants[email]
            grant.refresh_token = "1//emu" + secrets.token_urlsafe(48)
            grant.revoked = False
            self._by_refresh[grant.refresh_token] = grant
            return grant

    def issue(
        self, email: str, scopes: Sequence[str] | None = None, client_id: str | None = None
    ) -> tuple[str, float]:
        """A new access token for ``email`` and its expiry (epoch seconds), issued to ``client_id``
        (default: the account's own client)."""
        with self._lock:
            now = self._clock()
            # Forget expired tokens as new ones are minted, so memory tracks live tokens only.
            for token in [t for t, info in self._tokens.items() if info.expires_at < now - 3600]:
                del self._tokens[token]
            grant = self._grants[email]
            token = "ya29.emu-" + secrets.token_urlsafe(32)
            expires_at = now + self.lifetime
            self._tokens[token] = AccessToken(
                email, expires_at, frozenset(scopes or grant.scopes), client_id or grant.client_id
            )
            return token, expires_at

    def current_token(self, email: str) -> tuple[str, float]:
        """A still-valid access token of ``email`` (the newest), minting one if none is left.

        After a revocation nothing can be minted: the token returned is one the APIs refuse.
        """
        with self._lock:
            now = self._clock()
            grant = self._grants[email]
            if grant.revoked:
                return "ya29.revoked-" + secrets.token_urlsafe(16), now
            own = (
                (t, info.expires_at)
                for t, info in self._tokens.items()
                if info.email == email and info.client_id == grant.client_id
            )
            best = max(
                own,
                key=lambda item: item[1],
                default=None,
            )
        if best is not None and best[1] - now > 300:
            return best
        return self.issue(email)

    def revoke(self, email: str) -> None:
        """The user removes every app's access: all grants of ``email`` (any client) and their tokens."""
        self.consent.revoke_email(email)
        with self._lock:
            self._grants[email].revoked = True
            for token in [t for t, info in self._tokens.items() if info.email == email]:
                del self._tokens[token]

    def revoke_endpoint(self, token: str | None) -> tuple[int, dict[str, Any], str | None]:
        """``POST /revoke``: a refresh or access token; the whole grant behind it dies, as at Google.

        A grant is one user's consent to one OAuth client: every refresh token issued for it (each
        consent, incremental ones included, so Drive's and Gmail's alike) and every access token
        minted from them stop working. Other clients' grants of the same user are untouched.
        """
        app = self.consent.refresh_grant(token or "")
        legacy = self._by_refresh.get(token or "")
        access = self._tokens.get(token or "")
        if app is not None:
            email, client_id, kind = app.email, app.client_id, "refresh_token"
        elif legacy is not None:
            email, client_id, kind = legacy.email, legacy.client_id, "refresh_token"
        elif access is not None:
            email, client_id, kind = access.email, access.client_id, "access_token"
        else:
            self.consent.record_revocation(None, None, "unknown", False)
            return 400, {"error": "invalid_token", "error_description": "Token expired or revoked"}, None
        self._revoke_grant(email, client_id)
        self.consent.record_revocation(email, client_id, kind, True)
        return 200, {}, email

    def _revoke_grant(self, email: str, client_id: str | None) -> None:
        own = self._grants.get(email)
        if own is not None and (client_id is None or own.client_id == client_id):
            own.revoked = True
        if client_id is not None:
            self.consent.revoke_grant(client_id, email)
        with self._lock:
            for token in [
                t
                for t, info in self._tokens.items()
                if info.email == email and (client_id is None or info.client_id == client_id)
            ]:
                del self._tokens[token]

    def expire(self, email: str) -> None:
        """Make every access token of ``email`` expired now (refresh still works)."""
        with self._lock:
            now = self._clock()
            for info in self._tokens.values():
                if info.email == email:
                    info.expires_at = min(info.expires_at, now - 1)

    def lookup(self, token: str | None) -> tuple[str | None, Caller | None]:
        """(email the token belongs to, caller if the token is valid now)."""
        if not token:
            return None, None
        with self._lock:
            info = self._tokens.get(token)
            if info is None:
                return None, None
            grant = self._grants.get(info.email)
            if info.expires_at <= self._clock() or grant is None:
                return info.email, None
            return info.email, Caller(info.email, info.scopes)

    def authenticate(self, token: str | None) -> Caller:
        _, caller = self.lookup(token)
        if caller is None:
            raise unauthenticated()
        return caller

    # --- the token endpoint ---------------------------------------------------------------------

    def account_of(self, body: bytes) -> str | None:
        """The account a token request is for, judged by its refresh token (for stats and faults)."""
        form = _form(body)
        grant = self._by_refresh.get(form.get("refresh_token", "")) or self.consent.refresh_grant(
            form.get("refresh_token", "")
        )
        return grant.email if grant is not None else None

    def token_endpoint(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, Any], str | None]:
        """Answer ``POST /token``: (status, JSON body, email of the account, if known)."""
        form = _form(body)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic_auth(headers)
        if basic is not None:
            client_id, client_secret = basic
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            status, answer, email = self.consent.exchange(form, client_id, client_secret)
            if status == 200 and email is not None:
                token, _ = self.issue(email, answer["scope"].split(), client_id)
                answer.update(access_token=token, expires_in=int(self.lifetime) - 1, token_type="Bearer")
            return status, answer, email
        if grant_type != "refresh_token":
            return (
                400,
                {"error": "unsupported_grant_type", "error_description": f"Invalid grant_type: {grant_type}"},
                None,
            )
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return (
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Missing required parameter: refresh_token",
                },
                None,
            )
        grant: Grant | AppGrant | None = self._by_refresh.get(refresh_token) or self.consent.refresh_grant(
            refresh_token
        )
        client = next((g for g in self._grants.values() if g.client_id == client_id), None)
        expected_secret = client.client_secret if client else self.consent.client_secret(client_id)
        if expected_secret is None:
            return (
                401,
                {"error": "invalid_client", "error_description": "The OAuth client was not found."},
                None,
            )
        if expected_secret != client_secret:
            return (
                401,
                {"error": "invalid_client", "error_description": "Unauthorized"},
                client.email if client else None,
            )
        if (
            grant is None
            or grant.revoked
            or grant.refresh_token != refresh_token
            or grant.client_id != client_id
        ):
            email = grant.email if grant is not None else None
            return (
                400,
                {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                email,
            )
        requested = form.get("scope")
        scopes: Sequence[str] = grant.scopes
        if requested:
            asked = requested.split()
            unknown = [s for s in asked if s not in grant.scopes]
            if unknown:
                return (
                    400,
                    {
                        "error": "invalid_scope",
                        "error_description": f"Some requested scopes were invalid. {{invalid={unknown}}}",
                    },
                    grant.email,
                )
            scopes = asked
        token, _ = self.issue(grant.email, scopes, grant.client_id)
        return (
            200,
            {
                "access_token": token,
                "expires_in": int(self.lifetime) - 1,
                "scope": " ".join(scopes),
                "token_type": "Bearer",
            },
            grant.email,
        )


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def bearer_token(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> str | None:
    """The access token of a call: ``Authorization: Bearer``, or the access_token/oauth_token parameter."""
    for key, value in headers.items():
        if key.lower() == "authorization":
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    for name in ("access_token", "oauth_token"):
        if query.get(name):
            return query[name][-1]
    return None


def _basic_auth(headers: Mapping[str, str]) -> tuple[str, str] | None:
    for key, value in headers.items():
        if key.lower() == "authorization" and value.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(value[6:]).decode()
            except ValueError:
                return None
            user, _, password = decoded.partition(":")
            return unquote(user), unquote(password)
    return None


def require_scope(caller: Caller, allowed: frozenset[str]) -> None:
    if not caller.scopes & allowed:
        raise insufficient_permissions()
