"""``connector_accounts.token_json`` (authorized-user JSON) to and from google-auth Credentials.

An account of a Workspace domain stores a *domain grant* instead: ``{"type": "domain_delegation",
"domain_id", "subject", "scopes"}``, no secret. The store joins the domain's key file in memory
(``service_account``) when it reads the row; the run impersonates ``subject`` with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.auth.credentials import Credentials as AnyCredentials
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials

from monolyth_pipelines import settings
from monolyth_pipelines.settings import GoogleEndpoints, OAuthClient

# google-auth's own expiry format: naive UTC.
_EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%S"
DOMAIN_GRANT = "domain_delegation"
# The part of a domain grant that exists only in memory, joined from connector_domains.
SERVICE_ACCOUNT_KEY = "service_account"


def is_domain_grant(token_json: dict[str, Any] | None) -> bool:
    return token_json is not None and token_json.get("type") == DOMAIN_GRANT


def domain_grant(domain_id: str, subject: str, scopes: list[str]) -> dict[str, Any]:
    """What an account of a domain stores: who to impersonate, through which domain's key."""
    return {"type": DOMAIN_GRANT, "domain_id": domain_id, "subject": subject, "scopes": list(scopes)}


def service_account_credentials(
    key_info: dict[str, Any], *, subject: str, scopes: list[str], token_uri: str
) -> service_account.Credentials:
    """The key impersonating ``subject``; google-auth signs the assertion and does the JWT-bearer
    exchange at ``token_uri`` (the key file's own token_uri is not trusted, like a grant's)."""
    return service_account.Credentials.from_service_account_info(
        {**key_info, "token_uri": token_uri}, scopes=scopes, subject=subject
    )


def _parse_expiry(raw: str | None) -> datetime | None:
    if not raw:
        return None
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def credentials_from_token_json(
    token_json: dict[str, Any], token_uri: str, client: OAuthClient | None = None
) -> Credentials:
    """Build Credentials that refresh against ``token_uri``.

    ``Credentials.from_authorized_user_info`` would silently replace any token_uri with Google's,
    which sends an emulator account's refresh token to Google; building directly keeps ours. The
    token_uri stored in token_json is not trusted either: the deployment decides where refresh
    tokens go.

    Rows the OAuth connect writes hold no client secret: the deployment's ``client`` supplies it
    (``MONOLYTH_GOOGLE_CLIENT_ID``/``_SECRET``). Rows that carry their own client keep using it.
    """
    deployment_grant = not token_json.get("client_secret") and token_json.get("client_id") in (
        None,
        "",
        client.client_id if client else None,
    )
    if client is not None and deployment_grant:
        token_json = {**token_json, "client_id": client.client_id, "client_secret": client.client_secret}
    missing = [k for k in ("refresh_token", "client_id", "client_secret") if not token_json.get(k)]
    if missing:
        raise ValueError(f"token_json lacks {', '.join(missing)}")
    scopes = token_json.get("scopes")
    if isinstance(scopes, str):
        scopes = scopes.split()
    return Credentials(
        token=token_json.get("token"),
        refresh_token=token_json["refresh_token"],
        client_id=token_json["client_id"],
        client_secret=token_json["client_secret"],
        token_uri=token_uri,
        scopes=scopes,
        expiry=_parse_expiry(token_json.get("expiry")),
    )


def credentials_for_grant(token_json: dict[str, Any], endpoints: GoogleEndpoints) -> AnyCredentials:
    """The one way to build Credentials for a stored grant: runs, probes, push and disconnect.

    A grant the deployment's OAuth client issued stores no client secret; only this function
    supplies it, so a path that forgets it cannot exist (probes and push once did, and silently
    did nothing for every account connected through ``accounts connect``). A domain grant gives
    the domain's service account impersonating the user, with the provider's scopes.
    """
    if is_domain_grant(token_json):
        key = token_json.get(SERVICE_ACCOUNT_KEY)
        if not key:
            raise ValueError("the domain's service-account key is not available")
        return service_account_credentials(
            key, subject=token_json["subject"], scopes=scopes_of(token_json), token_uri=endpoints.token_uri
        )
    return credentials_from_token_json(token_json, endpoints.token_uri, settings.oauth_client())


def token_json_after_refresh(
    token_json: dict[str, Any], credentials: AnyCredentials
) -> dict[str, Any] | None:
    """The token_json to write back, or None when the credentials were not refreshed.

    Only a new access or refresh token counts: rewriting the row for a differently formatted
    expiry would race a user who reconnects meanwhile for nothing. A domain grant is never
    written back: its access tokens are minted from the key per run, and the row must not
    receive the key joined into it.
    """
    if is_domain_grant(token_json) or not isinstance(credentials, Credentials):
        return None
    refresh_token = credentials.refresh_token or token_json.get("refresh_token")
    if credentials.token == token_json.get("token") and refresh_token == token_json.get("refresh_token"):
        return None
    expiry = credentials.expiry.strftime(_EXPIRY_FORMAT) if credentials.expiry else None
    updated = {
        **token_json,
        "token": credentials.token,
        "expiry": expiry,
        # Google may rotate the refresh token; keeping the old one would lock the account out.
        "refresh_token": refresh_token,
    }
    return updated


def scopes_of(token_json: dict[str, Any]) -> list[str]:
    scopes = token_json.get("scopes") or []
    return scopes.split() if isinstance(scopes, str) else list(scopes)
