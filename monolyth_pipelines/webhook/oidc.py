"""Pub/Sub push authentication: the push subscription's Google-signed OIDC token.

Pub/Sub sends ``Authorization: Bearer <JWT>`` (RS256, ``kid`` header). It is genuine when
google-auth's ``id_token.verify_token`` accepts it (signature against Google's certificates,
``iat``/``exp``, ``aud`` = our Gmail endpoint), its issuer is Google's and its ``email`` is the
push service account the deployment configured, verified. Google's certificates change rarely
and are fetched at most once per cache lifetime, again early only for a key id not seen yet (a
rotation), at most once a minute, so forged tokens cannot make us hammer the endpoint.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth import exceptions, jwt
from google.oauth2 import id_token

logger = logging.getLogger(__name__)

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Tolerated clock difference between Google and us for iat/exp.
CLOCK_SKEW_SECONDS = 30
CERTS_TIMEOUT_SECONDS = 10
CACHE_SECONDS_DEFAULT = 3600
CACHE_SECONDS_MAX = 6 * 3600
REFETCH_AT_MOST_EVERY_SECONDS = 60


@dataclass(frozen=True)
class _Cached:
    status: int
    headers: dict[str, str]
    data: bytes


def _max_age(headers: dict[str, str]) -> float:
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "max-age" and value.isdigit():
            return min(float(value), CACHE_SECONDS_MAX)
    return CACHE_SECONDS_DEFAULT


class CertCache:
    """A google-auth transport ``Request`` for the certificates URL that answers from a cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[float, float, _Cached]] = {}  # url -> (fetched, fresh until, answer)

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **_: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cached.get(url)
            if hit and now < hit[1]:
                return hit[2]
        response = google_auth_httplib2.Request(httplib2.Http(timeout=CERTS_TIMEOUT_SECONDS))(
            url, method=method, body=body, headers=headers
        )
        answer = _Cached(response.status, {k.lower(): v for k, v in response.headers.items()}, response.data)
        if answer.status == 200:
            with self._lock:
                self._cached[url] = (now, now + _max_age(answer.headers), answer)
        return answer

    def knows_key(self, url: str, key_id: str | None) -> bool:
        with self._lock:
            hit = self._cached.get(url)
        if hit is None:
            return False
        try:
            return key_id in json.loads(hit[2].data)
        except ValueError:
            return False

    def forget_if_older(self, url: str, seconds: float) -> bool:
        with self._lock:
            hit = self._cached.get(url)
            if hit is None or time.monotonic() - hit[0] < seconds:
                return False
            del self._cached[url]
            return True


class PushVerifier:
    def __init__(self, *, audiences: list[str], service_account: str, certs_url: str) -> None:
        self.audiences = audiences
        self.service_account = service_account.lower()
        self.certs_url = certs_url
        self.certs = CertCache()

    def _claims(self, token: str) -> Any:
        return id_token.verify_token(
            token,
            self.certs,
            audience=self.audiences,
            certs_url=self.certs_url,
            clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
        )

    def verify(self, authorization: str | None) -> str | None:
        """None when the header carries a genuine push token; else why not (never token text)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "no bearer token"
        token = token.strip()
        try:
            try:
                claims = self._claims(token)
            except ValueError:
                # A key id we have not seen may be a rotation at Google: fetch again, once a minute.
                kid = jwt.decode_header(token).get("kid")
                if self.certs.knows_key(self.certs_url, kid) or not self.certs.forget_if_older(
                    self.certs_url, REFETCH_AT_MOST_EVERY_SECONDS
                ):
                    raise
                claims = self._claims(token)
        except (ValueError, exceptions.GoogleAuthError) as exc:
            # google-auth's messages may quote the token: only the type is kept.
            return f"invalid token ({type(exc).__name__})"
        if claims.get("iss") not in GOOGLE_ISSUERS:
            return "wrong issuer"
        if (
            str(claims.get("email", "")).lower() != self.service_account
            or claims.get("email_verified") is not True
        ):
            return "wrong service account"
        return None
