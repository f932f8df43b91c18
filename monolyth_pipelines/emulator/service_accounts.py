"""Service accounts, their key files, and the JWT-bearer grant (RFC 7523) as Google runs it.

A key file is what the Cloud console's "Add key > JSON" downloads: the private key is generated
here, handed out once and not kept; the emulator keeps only the public key to verify assertions.
The token endpoint verifies the RS256 signature with the key named by ``kid`` (any live key of
the account without one), the claims (``iss``, ``aud``, ``iat``/``exp``, ``scope``), and, for a
``sub``, that the user's domain delegated every requested scope to the account's numeric client
id. The errors are the ones Google documents for domain-wide delegation.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

if TYPE_CHECKING:
    from monolyth_pipelines.emulator.directory import Workspace

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
MAX_LIFETIME = 3600
# Google accepts exp up to 65 minutes past iat and a little clock skew either way.
_LIFETIME_SLACK = 300
_SKEW = 300
NOT_DELEGATED = (
    "Client is unauthorized to retrieve access tokens using this method, or client not authorized "
    "for any of the scopes requested."
)
SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


@dataclass
class ServiceAccount:
    email: str
    client_id: str  # the numeric id the Admin console's delegation form asks for
    project_id: str
    public_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    disabled: bool = False


Answer = tuple[int, dict[str, Any], str | None]


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def unverified_claims(assertion: str) -> dict[str, Any]:
    """The payload of an assertion, unverified (for stats: who a token request is for)."""
    try:
        value = json.loads(_b64url_decode(assertion.split(".")[1]))
    except (IndexError, ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _error(status: int, error: str, description: str, email: str | None = None) -> Answer:
    return status, {"error": error, "error_description": description}, email


def _invalid_grant(description: str, email: str | None = None) -> Answer:
    return _error(400, "invalid_grant", description, email)


class ServiceAccounts:
    """``issue`` mints an access token for an impersonated user (the emulator's OAuth server)."""

    def __init__(
        self,
        workspace: Workspace,
        clock: Callable[[], float],
        issue: Callable[[str, list[str]], tuple[str, float]],
        lifetime: Callable[[], float],
    ) -> None:
        self.workspace = workspace
        self._clock = clock
        self._issue = issue
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self.accounts: dict[str, ServiceAccount] = {}  # by email

    def create(self, name: str = "monolyth-sync", project_id: str = "emulated-project") -> ServiceAccount:
        email = f"{name}@{project_id}.iam.gserviceaccount.com"
        with self._lock:
            if email not in self.accounts:
                client_id = str(10**20 + secrets.randbelow(9 * 10**20))
                self.accounts[email] = ServiceAccount(email, client_id, project_id)
            return self.accounts[email]

    def create_key(self, account: ServiceAccount, token_uri: str = GOOGLE_TOKEN_AUDIENCE) -> dict[str, Any]:
        """A new key of ``account`` as the JSON key file Google hands out (the only copy of the
        private key)."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        with self._lock:
            account.public_keys[key_id] = private.public_key()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": account.project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": account.email,
            "client_id": account.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{account.email}",
            "universe_domain": "googleapis.com",
        }

    def delete_key(self, email: str, key_id: str) -> None:
        with self._lock:
            self.accounts[email].public_keys.pop(key_id, None)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "email": a.email,
                "client_id": a.client_id,
                "key_ids": sorted(a.public_keys),
                "disabled": a.disabled,
            }
            for a in self.accounts.values()
        ]

    # --- the token endpoint ------------------------------------------------------------------------

    def token_endpoint(self, form: dict[str, str]) -> Answer:
        assertion = form.get("assertion")
        if not assertion:
            return _error(400, "invalid_request", "Missing required parameter: assertion")
        parts = assertion.split(".")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (IndexError, ValueError, UnicodeDecodeError):
            return _invalid_grant("Invalid JWT: the assertion is not a JWT.")
        if not isinstance(header, dict) or not isinstance(claims, dict) or len(parts) != 3:
            return _invalid_grant("Invalid JWT: the assertion is not a JWT.")
        subject = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        account = self.accounts.get(str(claims.get("iss")))
        if header.get("alg") != "RS256" or account is None:
            return _error(401, "invalid_client", "The OAuth client was not found.", subject)
        if account.disabled:
            return _error(400, "disabled_client", "The OAuth client was disabled.", subject)
        if not self._verified(account, header.get("kid"), f"{parts[0]}.{parts[1]}".encode(), signature):
            return _invalid_grant("Invalid JWT Signature.", subject)
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return _invalid_grant(
                f"Invalid JWT: Failed audience check. The right audience is {GOOGLE_TOKEN_AUDIENCE}", subject
            )
        now = self._clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int | float)
            or not isinstance(exp, int | float)
            or exp - iat > MAX_LIFETIME + _LIFETIME_SLACK
            or iat > now + _SKEW
            or exp < now - _SKEW
        ):
            return _invalid_grant(SHORT_LIVED, subject)
        scopes = str(claims.get("scope") or "").split()
        if not scopes:
            return _error(400, "invalid_scope", "Empty or missing scope not allowed.", subject)
        if subject is None:
            # A token for the service account itself: it owns no Drive or mailbox here.
            return _error(400, "invalid_request", "the emulator serves only impersonation (a sub claim)")
        return self._impersonate(account, subject, scopes)

    def _verified(self, account: ServiceAccount, kid: Any, signed: bytes, signature: bytes) -> bool:
        with self._lock:
            keys = [account.public_keys[kid]] if kid in account.public_keys else []
            if kid is None:
                keys = list(account.public_keys.values())
        for key in keys:
            try:
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
                return True
            except InvalidSignature:
                continue
        return False

    def _impersonate(self, account: ServiceAccount, subject: str, scopes: list[str]) -> Answer:
        user = self.workspace.user(subject)
        if user is None or user.deleted:
            return _invalid_grant("Invalid email or User ID", subject)
        email = user.primary_email
        domain = self.workspace.domains[email.split("@", 1)[1]]
        delegated = domain.delegations.get(account.client_id)
        if delegated is None or not set(scopes) <= delegated:
            return _error(401, "unauthorized_client", NOT_DELEGATED, email)
        if user.suspended:
            return _invalid_grant("Invalid email or User ID", email)
        token, _ = self._issue(email, scopes)
        return (
            200,
            {
                "access_token": token,
                "expires_in": int(self._lifetime()) - 1,
                "token_type": "Bearer",
            },
            email,
        )
