"""Fault injection, quotas and counters, seen through the real client and over HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from monolyth_pipelines.emulator import GoogleEmulator
from tests.emulator.conftest import Served, drive_client, gmail_client, no_sleep


def test_scripted_third_call_503_is_retried_by_the_client(served: Served) -> None:
    rule = served.emu.faults.script("drive.files.list", calls=[3], status=503)
    files = served.drive.files()
    for _ in range(3):
        result = no_sleep(files.list(pageSize=2)).execute(num_retries=3)
        assert len(result["files"]) == 2
    stats = served.stats()
    assert stats["statuses"]["drive.files.list"] == {"200": 3, "503": 1}
    assert stats["faults_injected"] == {"drive.files.list": 1}
    assert stats["http_requests"]["drive.files.list"] == 4
    assert (rule.matched, rule.fired) == (4, 1)


def test_every_call_fails_until_retries_run_out(served: Served) -> None:
    served.emu.faults.script("gmail.users.*", every=True, status=500)
    with pytest.raises(HttpError) as caught:
        no_sleep(served.gmail.users().getProfile(userId="me")).execute(num_retries=2)
    assert caught.value.status_code == 500
    assert caught.value.error_details[0]["reason"] == "backendError"
    assert served.stats()["statuses"]["gmail.users.getProfile"] == {"500": 3}
    # Drive is untouched by a gmail.* rule.
    assert served.drive.files().list(pageSize=1).execute()["files"]


def test_non_retryable_403_is_not_retried(served: Served) -> None:
    served.emu.faults.script("drive.files.list", calls=[1], status=403, reason="insufficientPermissions")
    with pytest.raises(HttpError) as caught:
        no_sleep(served.drive.files().list()).execute(num_retries=5)
    assert caught.value.status_code == 403
    assert served.stats()["api_calls"]["drive.files.list"] == 1


def _run_error_rate(seed: int) -> tuple[int, dict[str, Any]]:
    emu = GoogleEmulator(seed=seed)
    account = emu.add_account("a@example.com", drive_files=5)
    emu.faults.error_rate(0.2, statuses=(503, 429))
    token = account.authorized_user_info()["token"]
    failures = 0
    for _ in range(300):
        response = emu.handle("GET", "/drive/v3/files?pageSize=1", {"Authorization": f"Bearer {token}"})
        failures += response.status != 200
        if response.status != 200:
            assert json.loads(response.read_all())["error"]["code"] in (503, 429)
    return failures, emu.stats(account)


def test_error_rate_is_seeded_and_about_right() -> None:
    failures, stats = _run_error_rate(seed=9)
    assert 40 <= failures <= 80
    assert stats["totals"]["faults_injected"] == failures
    assert set(stats["statuses"]["drive.files.list"]) == {"200", "429", "503"}
    assert stats["totals"]["responses_429"] == stats["statuses"]["drive.files.list"]["429"]
    assert _run_error_rate(seed=9) == (failures, stats)


def test_latency(served: Served) -> None:
    served.emu.faults.latency(0.3, endpoint="drive.files.get")
    file_id = served.drive.files().list(pageSize=1).execute()["files"][0]["id"]
    started = time.monotonic()
    served.drive.files().get(fileId=file_id).execute()
    assert time.monotonic() - started >= 0.3


def test_dropped_connections(served: Served) -> None:
    served.emu.faults.drop("drive.files.list", calls=[1])
    # httplib2 silently re-sends a request whose connection closed without an answer.
    assert served.drive.files().list(pageSize=1).execute()["files"]
    stats = served.stats()
    assert stats["dropped"] == {"drive.files.list": 1}
    assert stats["statuses"]["drive.files.list"] == {"200": 1}
    served.emu.faults.clear()
    served.emu.faults.drop("gmail.users.getProfile", every=True)
    with pytest.raises(ConnectionError):
        no_sleep(served.gmail.users().getProfile(userId="me")).execute(num_retries=1)


def test_gmail_quota_units_per_second_sliding_window() -> None:
    now = [1_900_000_000.0]
    emu = GoogleEmulator(seed=2, clock=lambda: now[0])
    account = emu.add_account("a@example.com", gmail_threads=3)
    emu.quotas.configure(gmail_units_per_second=25)
    with emu.serve() as base_url:
        users = gmail_client(base_url, account).users()
        thread_id = users.threads().list(userId="me").execute()["threads"][0]["id"]  # 10 units
        users.threads().get(userId="me", id=thread_id).execute()  # 20
        with pytest.raises(HttpError) as caught:
            users.threads().get(userId="me", id=thread_id).execute()  # 30 > 25
        assert caught.value.status_code == 429
        assert caught.value.error_details[0]["reason"] == "rateLimitExceeded"
        users.getProfile(userId="me").execute()  # 21: a cheaper call still fits
        now[0] += 0.5
        with pytest.raises(HttpError):
            users.threads().get(userId="me", id=thread_id).execute()
        now[0] += 0.6  # the first two calls have left the 1 s window
        users.threads().get(userId="me", id=thread_id).execute()
    stats = emu.stats(account)
    assert stats["quota_exceeded"] == {"gmail.users.threads.get": 2}
    assert stats["quota_units"] == {"gmail": 10 + 10 + 1 + 10}
    assert stats["totals"]["responses_429"] == 2


def test_drive_requests_per_minute_and_custom_costs() -> None:
    now = [1_900_000_000.0]
    emu = GoogleEmulator(seed=2, clock=lambda: now[0])
    account = emu.add_account("a@example.com", drive_files=3, gmail_threads=1)
    emu.quotas.configure(
        drive_requests_per_minute=3, gmail_units_per_second=100, gmail_costs={"gmail.users.getProfile": 60}
    )
    with emu.serve() as base_url:
        files = drive_client(base_url, account).files()
        for _ in range(3):
            files.list().execute()
        with pytest.raises(HttpError) as caught:
            files.list().execute()
        assert (caught.value.status_code, caught.value.error_details[0]["reason"]) == (
            403,
            "userRateLimitExceeded",
        )
        now[0] += 61
        files.list().execute()
        users = gmail_client(base_url, account).users()
        users.getProfile(userId="me").execute()
        with pytest.raises(HttpError):
            users.getProfile(userId="me").execute()
    emu.quotas.disable()
    assert emu.quotas.admit("drive.files.list", "a@example.com") is None


def test_token_endpoint_faults_are_retried_by_google_auth(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("google.auth._exponential_backoff.time.sleep", lambda seconds: None)
    served.emu.faults.script("oauth.token", calls=[1], status=503)
    drive = served.drive
    served.emu.expire_access_tokens(served.account)
    assert drive.files().list(pageSize=1).execute()["files"]
    assert served.stats()["statuses"]["oauth.token"] == {"200": 1, "503": 1}


def _http_json(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_stats_and_control_over_http(served: Served) -> None:
    base = served.base_url
    served.drive.files().list(pageSize=1).execute()
    stats = _http_json(f"{base}/_emulator/stats")
    assert stats == served.emu.stats_snapshot()
    assert stats["accounts"][served.account.email]["api_calls"] == {"drive.files.list": 1}
    _http_json(f"{base}/_emulator/stats/reset", "POST")
    assert served.emu.stats_total()["totals"]["api_calls"] == 0

    rules = _http_json(
        f"{base}/_emulator/faults",
        "POST",
        {"kind": "script", "endpoint": "drive.files.get", "calls": [1], "status": 500},
    )
    assert rules[0]["endpoint"] == "drive.files.get" and rules[0]["calls"] == [1]
    assert _http_json(f"{base}/_emulator/faults", "DELETE") == []
    quotas = _http_json(f"{base}/_emulator/quotas", "POST", {"gmail_units_per_second": 50})
    assert quotas["gmail_units_per_second"] == 50

    email = served.account.email
    created = _http_json(
        f"{base}/_emulator/accounts/{email}/drive/create_file",
        "POST",
        {"name": "Via HTTP.pdf", "mime_type": "application/pdf", "size": 1234},
    )
    assert served.drive.files().get(fileId=created["id"], fields="name,size").execute() == {
        "name": "Via HTTP.pdf",
        "size": "1234",
    }
    message = _http_json(
        f"{base}/_emulator/accounts/{email}/gmail/deliver",
        "POST",
        {"subject": "Hello", "attachments": [["a.pdf", "application/pdf", 100]]},
    )
    assert served.emu.gmail(served.account).message(message["id"])["id"] == message["id"]
    summary = _http_json(f"{base}/_emulator/accounts/{email}")
    assert summary["drive_files"] == 61 and summary["gmail_threads"] == 26
    added = _http_json(f"{base}/_emulator/accounts", "POST", {"email": "new@example.com", "drive_files": 3})
    assert added["authorized_user"]["token_uri"] == f"{base}/token"
    with pytest.raises(urllib.error.HTTPError) as caught:
        _http_json(f"{base}/_emulator/accounts/nobody@example.com")
    assert caught.value.code == 404
