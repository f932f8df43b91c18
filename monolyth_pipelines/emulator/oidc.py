"""Google-signed OIDC tokens, as Pub/Sub attaches them to authenticated push requests.

A push subscription with ``oidcToken`` sends ``Authorization: Bearer <JWT>``: RS256 with a ``kid``
header, claims ``aud`` (the subscription's audience, else the push endpoint URL), ``azp``,
``email`` (the push service account), ``email_verified``, ``iat``, ``exp`` (one hour later),
``iss`` = ``https://accounts.google.com`` and ``sub``. Receivers check it against Google's keys
at ``https://www.googleapis.com/oauth2/v1/certs`` (``{kid: PEM X.509 certificate}``); the
emulator serves its own keys in that format at ``/oauth2/v1/certs``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

CERTS_PATH = "/oauth2/v1/certs"
ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME_SECONDS = 3600
# Google's certs endpoint answers with a cache lifetime of hours; receivers may cache.
CERTS_MAX_AGE_SECONDS = 3600


def new_signing_key() -> tuple[str, str]:
    """(private key PEM, self-signed certificate PEM): one RSA key as Google publishes them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator.googleusercontent.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def sign(private_pem: str, key_id: str, claims: dict[str, Any]) -> str:
    signer = crypt.RSASigner.from_string(private_pem, key_id=key_id)
    return jwt.encode(signer, claims).decode()


class OidcIssuer:
    """The emulator's Google signing key (made on first use: RSA generation takes a moment)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._key: tuple[str, str, str] | None = None  # (kid, private PEM, certificate PEM)

    def _signing_key(self) -> tuple[str, str, str]:
        with self._lock:
            if self._key is None:
                private_pem, cert_pem = new_signing_key()
                kid = hashlib.sha1(cert_pem.encode()).hexdigest()
                self._key = (kid, private_pem, cert_pem)
            return self._key

    def certs(self) -> dict[str, str]:
        kid, _, cert_pem = self._signing_key()
        return {kid: cert_pem}

    def token(
        self,
        *,
        audience: str,
        email: str,
        issued_at: float | None = None,
        lifetime: float = TOKEN_LIFETIME_SECONDS,
        **claims: Any,
    ) -> str:
        """A token as Pub/Sub sends it; ``claims`` override or add claims (tests forge with them)."""
        kid, private_pem, _ = self._signing_key()
        iat = int(self._clock() if issued_at is None else issued_at)
        subject = str(int(hashlib.sha256(email.encode()).hexdigest(), 16) % 10**21)
        payload: dict[str, Any] = {
            "aud": audience,
            "azp": subject,
            "email": email,
            "email_verified": True,
            "iat": iat,
            "exp": iat + int(lifetime),
            "iss": ISSUER,
            "sub": subject,
        }
        return sign(private_pem, kid, payload | claims)
