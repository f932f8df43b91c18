"""OAuth: refresh over the emulator's token endpoint, revocation, bad clients, 401s, many accounts."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import Request
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from monolyth_pipelines.emulator import GoogleEmulator
from tests.emulator.conftest import Served, drive_client, gmail_client


def _credentials(info: dict[str, object], token_uri: str, **overrides: object) -> Credentials:
    fields = {
        "token": info["token"],
        "refresh_token": info["refresh_token"],
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "scopes": info["scopes"],
        "token_uri": token_uri,
    }
    fields.update(overrides)
    return Credentials(**fields)  # type: ignore[arg-type]


def test_authorized_user_info_is_valid_and_secret_per_account(emu: GoogleEmulator) -> None:
    alice = emu.add_account("alice@example.com")
    bob = emu.add_account("bob@example.com")
    a, b = alice.authorized_user_info(), bob.authorized_user_info()
    for key in ("token", "refresh_token", "client_id", "client_secret"):
        assert a[key] and b[key] and a[key] != b[key]
    creds = Credentials.from_authorized_user_info(a)
    assert creds.valid and not creds.expired
    assert datetime.strptime(a["expiry"], "%Y-%m-%dT%H:%M:%SZ") > datetime.now(UTC).replace(tzinfo=None)
    # A second emulator with the same seed has the same data but different secrets.
    other = GoogleEmulator(seed=emu.seed).add_account("alice@example.com").authorized_user_info()
    assert other["refresh_token"] != a["refresh_token"] and other["client_secret"] != a["client_secret"]


def test_expired_token_is_refreshed_before_the_call(served: Served) -> None:
    info = served.account.authorized_user_info()
    creds = _credentials(
        info, f"{served.base_url}/token", expiry=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    )
    assert creds.expired
    gmail = build(
        "gmail",
        "v1",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": served.base_url + "/"},
    )
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == served.account.email
    assert creds.token != info["token"] and creds.valid
    stats = served.stats()
    assert stats["api_calls"]["oauth.token"] == 1
    assert stats["statuses"]["gmail.users.getProfile"] == {"200": 1}


def test_server_side_expiry_answers_401_then_the_client_refreshes(served: Served) -> None:
    drive = served.drive
    served.emu.expire_access_tokens(served.account)
    result = drive.files().list(pageSize=1).execute()
    assert len(result["files"]) == 1
    stats = served.stats()
    assert stats["statuses"]["drive.files.list"] == {"200": 1, "401": 1}
    assert stats["statuses"]["oauth.token"] == {"200": 1}


def test_configurable_lifetime_expires_tokens() -> None:
    now = [1_800_000_000.0]
    emu = GoogleEmulator(seed=1, access_token_lifetime=60, clock=lambda: now[0])
    account = emu.add_account("alice@example.com")
    token = account.authorized_user_info()["token"]
    assert emu.oauth.lookup(token)[1] is not None
    now[0] += 61
    assert emu.oauth.lookup(token) == ("alice@example.com", None)
    response = emu.handle("GET", "/gmail/v1/users/me/profile", {"Authorization": f"Bearer {token}"})
    body = json.loads(response.read_all())
    assert response.status == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"
    assert body["error"]["errors"][0]["reason"] == "authError"
    # authorized_user_info hands out a fresh token once the old one is (nearly) expired.
    assert account.authorized_user_info()["token"] != token


def test_revoked_refresh_token_raises_invalid_grant(served: Served) -> None:
    info = served.account.authorized_user_info()
    served.emu.revoke(served.account)
    creds = _credentials(info, f"{served.base_url}/token")
    with pytest.raises(RefreshError) as caught:
        creds.refresh(Request(httplib2.Http()))
    assert "invalid_grant" in str(caught.value)
    assert caught.value.args[1]["error_description"] == "Token has been expired or revoked."
    assert caught.value.retryable is False
    # Access tokens died with the grant: a client refreshes first, and that fails.
    with pytest.raises(RefreshError, match="invalid_grant"):
        drive_client(served.base_url, served.account).files().list().execute()
    assert served.stats()["statuses"]["oauth.token"] == {"400": 2}
    response = served.emu.handle("GET", "/drive/v3/files", {"Authorization": f"Bearer {info['token']}"})
    assert response.status == 401


def test_revoked_then_reauthorized(served: Served) -> None:
    old = served.account.authorized_user_info()
    served.emu.revoke(served.account)
    served.emu.reauthorize(served.account)
    new = served.account.authorized_user_info()
    assert new["refresh_token"] != old["refresh_token"]
    assert _token_request(served.base_url, old)[0] == 400
    status, body = _token_request(served.base_url, new)
    assert status == 200 and body["token_type"] == "Bearer"


def _token_request(base_url: str, info: dict[str, object], **overrides: str) -> tuple[int, dict[str, object]]:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": str(info["refresh_token"]),
        "client_id": str(info["client_id"]),
        "client_secret": str(info["client_secret"]),
    }
    form.update(overrides)
    data = "&".join(f"{k}={urllib.request.quote(v, safe='')}" for k, v in form.items()).encode()
    request = urllib.request.Request(
        f"{base_url}/oauth2/v4/token",
        data=data,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_token_endpoint_errors(served: Served) -> None:
    info = served.account.authorized_user_info()
    status, body = _token_request(served.base_url, info)
    assert status == 200
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["scope"].split() == info["scopes"]
    assert _token_request(served.base_url, info, client_secret="wrong") == (
        401,
        {"error": "invalid_client", "error_description": "Unauthorized"},
    )
    assert _token_request(served.base_url, info, client_id="nobody")[1]["error"] == "invalid_client"
    assert _token_request(served.base_url, info, refresh_token="1//unknown") == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )
    assert (
        _token_request(served.base_url, info, grant_type="password")[1]["error"] == "unsupported_grant_type"
    )
    assert (
        _token_request(served.base_url, info, scope="https://mail.google.com/")[1]["error"] == "invalid_scope"
    )


def test_wrong_client_secret_fails_refresh_with_invalid_client(served: Served) -> None:
    info = served.account.authorized_user_info()
    creds = _credentials(info, f"{served.base_url}/token", client_secret="nope")
    with pytest.raises(RefreshError, match="invalid_client"):
        creds.refresh(Request(httplib2.Http()))


def test_missing_or_unknown_token_is_401_in_googles_shape(served: Served) -> None:
    for headers in ({}, {"Authorization": "Bearer ya29.unknown"}, {"Authorization": "Basic abc"}):
        response = served.emu.handle("GET", "/drive/v3/files", headers)
        body = json.loads(response.read_all())
        assert response.status == 401
        assert body["error"]["code"] == 401
        assert body["error"]["errors"][0] == {
            "message": "Invalid Credentials",
            "domain": "global",
            "reason": "authError",
            "location": "Authorization",
            "locationType": "header",
        }
    assert served.emu.stats_total()["statuses"]["drive.files.list"] == {"401": 3}


def test_access_tokens_identify_the_account(emu: GoogleEmulator) -> None:
    alice = emu.add_account("alice@example.com", drive_files=5, gmail_threads=3)
    bob = emu.add_account("bob@example.com", drive_files=9, gmail_threads=4)
    with emu.serve() as base_url:
        everything = {"corpora": "allDrives", "includeItemsFromAllDrives": True, "supportsAllDrives": True}
        assert len(drive_client(base_url, alice).files().list(**everything).execute()["files"]) == 5
        assert len(drive_client(base_url, bob).files().list(**everything).execute()["files"]) == 9
        assert gmail_client(base_url, bob).users().getProfile(userId="me").execute()["threadsTotal"] == 4
        with pytest.raises(HttpError) as caught:
            gmail_client(base_url, alice).users().getProfile(userId="bob@example.com").execute()
        assert caught.value.status_code == 403
    assert emu.stats(alice)["api_calls"]["drive.files.list"] == 1
    assert emu.stats(bob)["api_calls"]["drive.files.list"] == 1


def test_scopes_are_enforced(emu: GoogleEmulator) -> None:
    account = emu.add_account(
        "meta@example.com",
        drive_files=20,
        gmail_threads=3,
        scopes=[
            "https://www.googleapis.com/auth/gmail.metadata",
            "https://www.googleapis.com/auth/drive.metadata.readonly",
        ],
    )
    with emu.serve() as base_url:
        gmail = gmail_client(base_url, account).users()
        thread = gmail.threads().list(userId="me").execute()["threads"][0]["id"]
        assert gmail.threads().get(userId="me", id=thread, format="metadata").execute()["id"] == thread
        for call in (
            gmail.threads().get(userId="me", id=thread, format="full"),
            gmail.threads().list(userId="me", q="from:x"),
        ):
            with pytest.raises(HttpError) as caught:
                call.execute()
            assert caught.value.status_code == 403
        drive = drive_client(base_url, account)
        pdf = next(f for f in emu.drive(account).files() if f["mimeType"] == "application/pdf")
        with pytest.raises(HttpError) as caught:
            drive.files().get_media(fileId=pdf["id"]).execute()
        assert caught.value.error_details[0]["reason"] == "insufficientPermissions"


def test_secrets_never_reach_the_log(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    info = served.account.authorized_user_info()
    with caplog.at_level(logging.DEBUG, logger="monolyth_pipelines.emulator"):
        _token_request(served.base_url, info)
        served.emu.handle("GET", f"/drive/v3/files?access_token={info['token']}", {})
        drive_client(served.base_url, served.account).files().list(pageSize=1).execute()
    text = caplog.text
    assert "POST /token" in text or "/oauth2/v4/token" in text
    for secret in (info["refresh_token"], info["client_secret"], info["token"]):
        assert str(secret) not in text
