"""``connector_accounts.token_json`` (authorized-user JSON) to and from google-auth Credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.oauth2.credentials import Credentials

from monolyth_pipelines import settings
from monolyth_pipelines.settings import GoogleEndpoints, OAuthClient

# google-auth's own expiry format: naive UTC.
_EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%S"


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


def credentials_for_grant(token_json: dict[str, Any], endpoints: GoogleEndpoints) -> Credentials:
    """The one way to build Credentials for a stored grant: runs, probes, push and disconnect.

    A grant the deployment's OAuth client issued stores no client secret; only this function
    supplies it, so a path that forgets it cannot exist (probes and push once did, and silently
    did nothing for every account connected through ``accounts connect``).
    """
    return credentials_from_token_json(token_json, endpoints.token_uri, settings.oauth_client())


def token_json_after_refresh(token_json: dict[str, Any], credentials: Credentials) -> dict[str, Any] | None:
    """The token_json to write back, or None when the credentials were not refreshed.

    Only a new access or refresh token counts: rewriting the row for a differently formatted
    expiry would race a user who reconnects meanwhile for nothing.
    """
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
