"""The JWT-bearer grant and the Directory API of the emulator, driven by google-auth's real
service_account credentials and google-api-python-client over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
import requests
from google.auth import crypt, jwt
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from monolyth_pipelines.emulator import GoogleEmulator

DIRECTORY = "https://www.googleapis.com/auth/admin.directory.user.readonly"
DRIVE = "https://www.googleapis.com/auth/drive.readonly"
GMAIL = "https://www.googleapis.com/auth/gmail.readonly"


@pytest.fixture
def served() -> Iterator[tuple[GoogleEmulator, str, dict]]:
    emu = GoogleEmulator(seed=5)
    emu.add_domain("corp.test", users=7, drive_files=4)
    with emu.serve() as base:
        key = emu.service_account_key(delegate_to="corp.test", scopes=[DRIVE, DIRECTORY])
        yield emu, base, key


def _creds(key: dict, base: str, subject: str, scopes: list[str]) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_info(
        {**key, "token_uri": f"{base}/token"}, scopes=scopes, subject=subject
    )


def _refresh(creds: service_account.Credentials) -> None:
    creds.refresh(google_auth_httplib2.Request(httplib2.Http()))


def _directory(creds: service_account.Credentials, base: str) -> Any:
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http())
    return build(
        "admin", "directory_v1", http=http, static_discovery=True, client_options={"api_endpoint": base + "/"}
    )


def test_an_impersonated_user_reads_their_own_drive(served: tuple[GoogleEmulator, str, dict]) -> None:
    emu, base, key = served
    creds = _creds(key, base, "user3@corp.test", [DRIVE])
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http())
    drive = build(
        "drive", "v3", http=http, static_discovery=True, client_options={"api_endpoint": base + "/drive/v3/"}
    )
    about = drive.about().get(fields="user(emailAddress,permissionId)").execute()
    assert about["user"]["emailAddress"] == "user3@corp.test"
    # Google's numeric user id is the Drive permissionId, in the Directory as in Drive.
    user = emu.workspace.user("user3@corp.test")
    assert user is not None and about["user"]["permissionId"] == user.id
    assert emu.stats("user3@corp.test")["api_calls"]["oauth.token"] == 1


def test_the_signature_is_checked_with_the_service_accounts_public_key(
    served: tuple[GoogleEmulator, str, dict],
) -> None:
    emu, base, key = served
    other = emu.service_account_key("someone-else")
    forged = {**key, "private_key": other["private_key"]}  # same kid and iss, another private key
    with pytest.raises(RefreshError, match="invalid_grant: Invalid JWT Signature"):
        _refresh(_creds(forged, base, "user1@corp.test", [DRIVE]))
    emu.service_accounts.delete_key(key["client_email"], key["private_key_id"])
    with pytest.raises(RefreshError, match="invalid_grant: Invalid JWT Signature"):
        _refresh(_creds(key, base, "user1@corp.test", [DRIVE]))


def test_scopes_must_be_delegated_by_the_users_domain(served: tuple[GoogleEmulator, str, dict]) -> None:
    emu, base, key = served
    with pytest.raises(RefreshError, match="unauthorized_client") as caught:
        _refresh(_creds(key, base, "user1@corp.test", [DRIVE, GMAIL]))
    assert caught.value.retryable is False
    emu.workspace.delegate("corp.test", key["client_id"], [DRIVE, GMAIL])
    _refresh(_creds(key, base, "user1@corp.test", [DRIVE, GMAIL]))
    emu.workspace.revoke_delegation("corp.test", key["client_id"])
    with pytest.raises(RefreshError, match="unauthorized_client"):
        _refresh(_creds(key, base, "user1@corp.test", [DRIVE]))


def test_unknown_and_suspended_users_cannot_be_impersonated(served: tuple[GoogleEmulator, str, dict]) -> None:
    emu, base, key = served
    with pytest.raises(RefreshError, match="invalid_grant: Invalid email or User ID"):
        _refresh(_creds(key, base, "nobody@corp.test", [DRIVE]))
    emu.workspace.update_user("user2@corp.test", suspended=True)
    with pytest.raises(RefreshError, match="invalid_grant"):
        _refresh(_creds(key, base, "user2@corp.test", [DRIVE]))


def test_an_assertion_living_over_an_hour_is_refused(served: tuple[GoogleEmulator, str, dict]) -> None:
    _, base, key = served
    signer = crypt.RSASigner.from_service_account_info(key)
    now = int(time.time())
    claims = {
        "iss": key["client_email"],
        "sub": "user1@corp.test",
        "scope": DRIVE,
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 4 * 3600,
    }
    answer = requests.post(
        f"{base}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(signer, claims),
        },
        timeout=10,
    )
    assert answer.status_code == 400 and "short-lived" in answer.json()["error_description"]


def test_users_list_pages_filters_and_hides_deleted_users(served: tuple[GoogleEmulator, str, dict]) -> None:
    emu, base, key = served
    emu.workspace.update_user("user4@corp.test", suspended=True)
    emu.workspace.update_user("user5@corp.test", deleted=True)
    users = _directory(_creds(key, base, "admin@corp.test", [DIRECTORY]), base).users()
    request = users.list(customer="my_customer", maxResults=3)
    seen, pages = [], 0
    while request is not None:
        answer = request.execute()
        pages += 1
        seen += answer.get("users", [])
        request = users.list_next(request, answer)
    assert pages == 3 and len(seen) == 7  # admin + 7 users - 1 deleted
    assert {u["primaryEmail"] for u in seen if u["suspended"]} == {"user4@corp.test"}
    suspended = users.list(customer="my_customer", query="isSuspended=true").execute()
    assert [u["primaryEmail"] for u in suspended["users"]] == ["user4@corp.test"]
    deleted = users.list(customer="my_customer", showDeleted=True).execute()
    assert [u["primaryEmail"] for u in deleted["users"]] == ["user5@corp.test"]
    with pytest.raises(HttpError) as caught:
        users.list(customer="my_customer", query="favouriteColour=blue").execute()
    assert caught.value.resp.status == 400


def test_only_an_admin_may_list_the_directory(served: tuple[GoogleEmulator, str, dict]) -> None:
    _, base, key = served
    users = _directory(_creds(key, base, "user1@corp.test", [DIRECTORY]), base).users()
    with pytest.raises(HttpError) as caught:
        users.list(customer="my_customer").execute()
    assert caught.value.resp.status == 403


def test_domains_keys_and_delegation_over_the_admin_api() -> None:
    emu = GoogleEmulator(seed=1)
    with emu.serve() as base:
        admin = f"{base}/_emulator"
        assert requests.post(f"{admin}/workspace/domains", json={"name": "b.test", "users": 2}, timeout=10).ok
        key = requests.post(
            f"{admin}/service_accounts", json={"delegate_to": "b.test", "scopes": [DRIVE]}, timeout=10
        ).json()
        assert key["type"] == "service_account" and key["private_key"].startswith("-----BEGIN PRIVATE KEY")
        _refresh(_creds(key, base, "user2@b.test", [DRIVE]))
        requests.post(f"{admin}/workspace/users/user2@b.test", json={"suspended": True}, timeout=10)
        (domain,) = requests.get(f"{admin}/workspace", timeout=10).json()
        assert (domain["users"], domain["suspended"]) == (3, 1)
        assert domain["delegations"] == {key["client_id"]: [DRIVE]}
        (account,) = requests.get(f"{admin}/service_accounts", timeout=10).json()
        assert "private_key" not in account and account["key_ids"] == [key["private_key_id"]]
