"""Batch endpoints with googleapiclient.http.BatchHttpRequest: counting, limits, per-call failures."""

from __future__ import annotations

from typing import Any

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from monolyth_pipelines.emulator import GoogleEmulator
from tests.emulator.conftest import gmail_client


def _collector() -> tuple[dict[str, tuple[Any, Exception | None]], Any]:
    results: dict[str, tuple[Any, Exception | None]] = {}

    def callback(request_id: str, response: Any, exception: Exception | None) -> None:
        results[request_id] = (response, exception)

    return results, callback


def test_250_thread_gets_in_batches_of_100_are_3_http_requests(emu: GoogleEmulator) -> None:
    account = emu.add_account("alice@example.com", gmail_threads=250)
    with emu.serve() as base_url:
        gmail = gmail_client(base_url, account)
        ids: list[str] = []
        request = gmail.users().threads().list(userId="me", maxResults=500, includeSpamTrash=True)
        while request is not None:
            page = request.execute()
            ids += [t["id"] for t in page["threads"]]
            request = gmail.users().threads().list_next(request, page)
        assert len(ids) == 250
        emu.reset_stats()
        results, callback = _collector()
        for start in range(0, len(ids), 100):
            batch = BatchHttpRequest(callback=callback, batch_uri=f"{base_url}/batch/gmail/v1")
            for thread_id in ids[start : start + 100]:
                request = (
                    gmail.users()
                    .threads()
                    .get(
                        userId="me",
                        id=thread_id,
                        format="metadata",
                        metadataHeaders=["From", "Subject", "Date"],
                    )
                )
                batch.add(request, request_id=thread_id)
            batch.execute(http=gmail._http)
    assert len(results) == 250
    assert all(exc is None and resp["messages"] for resp, exc in results.values())
    assert {resp["id"] for resp, _ in results.values()} == set(ids)
    stats = emu.stats(account)
    assert stats["http_requests"] == {"batch.gmail": 3}
    assert stats["api_calls"] == {"gmail.users.threads.get": 250}
    assert stats["quota_units"] == {"gmail": 2500}


def test_101_calls_in_one_batch_are_refused(emu: GoogleEmulator) -> None:
    account = emu.add_account("alice@example.com", gmail_threads=3)
    with emu.serve() as base_url:
        gmail = gmail_client(base_url, account)
        results, callback = _collector()
        batch = BatchHttpRequest(callback=callback, batch_uri=f"{base_url}/batch/gmail/v1")
        for _ in range(101):  # the client allows up to 1000
            batch.add(gmail.users().getProfile(userId="me"))
        with pytest.raises(HttpError) as caught:
            batch.execute(http=gmail._http)
    assert caught.value.status_code == 400
    assert caught.value.error_details[0]["reason"] == "batchSizeTooLarge"
    assert results == {}
    assert "gmail.users.getProfile" not in emu.stats(account)["api_calls"]


def test_inner_calls_fail_individually_with_their_own_status(emu: GoogleEmulator) -> None:
    account = emu.add_account("alice@example.com", gmail_threads=5)
    emu.faults.script("gmail.users.threads.get", calls=[2], status=503)
    emu.quotas.configure(gmail_units_per_second=35)  # 3 threads.get of 10 units, then refused
    with emu.serve() as base_url:
        gmail = gmail_client(base_url, account)
        ids = [t["id"] for t in emu.gmail(account).threads_list()]
        results, callback = _collector()
        batch = BatchHttpRequest(callback=callback, batch_uri=f"{base_url}/batch/gmail/v1")
        for thread_id in ids:
            batch.add(gmail.users().threads().get(userId="me", id=thread_id, format="minimal"))
        batch.add(gmail.users().threads().get(userId="me", id="0000000000000000"))
        batch.execute(http=gmail._http)
    statuses = {
        rid: (exc.status_code if isinstance(exc, HttpError) else 200) for rid, (_, exc) in results.items()
    }
    # Call 2 is injected (and spends no quota), calls 1, 3, 4 fit in 35 units, call 5 does not.
    assert statuses == {"1": 200, "2": 503, "3": 200, "4": 200, "5": 429, "6": 429}
    stats = emu.stats(account)
    assert stats["http_requests"] == {"batch.gmail": 1}
    assert stats["faults_injected"] == {"gmail.users.threads.get": 1}
    assert stats["quota_exceeded"] == {"gmail.users.threads.get": 2}


def test_drive_batch_and_api_mismatch(emu: GoogleEmulator) -> None:
    account = emu.add_account("alice@example.com", drive_files=12, gmail_threads=2)
    with emu.serve() as base_url:
        from tests.emulator.conftest import drive_client

        drive = drive_client(base_url, account)
        gmail = gmail_client(base_url, account)
        files = [f["id"] for f in emu.drive(account).files(include_shared_drives=False)][:4]
        results, callback = _collector()
        batch = BatchHttpRequest(callback=callback, batch_uri=f"{base_url}/batch/drive/v3")
        for file_id in files:
            batch.add(drive.files().get(fileId=file_id, fields="id,name"))
        batch.add(gmail.users().getProfile(userId="me"))  # not a Drive call: refused inside
        batch.execute(http=drive._http)
        assert [results[str(n)][0]["id"] for n in range(1, 5)] == files
        assert isinstance(results["5"][1], HttpError) and results["5"][1].status_code == 404

        # Gmail's discovery batchPath is plain "batch": accepted for Gmail calls too.
        results, callback = _collector()
        batch = BatchHttpRequest(callback=callback, batch_uri=f"{base_url}/batch")
        batch.add(gmail.users().getProfile(userId="me"))
        batch.execute(http=gmail._http)
        assert results["1"][0]["emailAddress"] == "alice@example.com"
    assert emu.stats(account)["http_requests"] == {"batch": 1, "batch.drive": 1}


def test_inner_401_is_refreshed_and_resent_by_the_client(emu: GoogleEmulator) -> None:
    account = emu.add_account("alice@example.com", gmail_threads=3)
    with emu.serve() as base_url:
        gmail = gmail_client(base_url, account)
        emu.expire_access_tokens(account)
        results, callback = _collector()
        batch = BatchHttpRequest(callback=callback, batch_uri=f"{base_url}/batch/gmail/v1")
        for _ in range(3):
            batch.add(gmail.users().getProfile(userId="me"))
        batch.execute(http=gmail._http)
    assert all(exc is None for _, exc in results.values())
    stats = emu.stats(account)
    assert stats["statuses"]["gmail.users.getProfile"] == {"200": 3, "401": 3}
    assert stats["http_requests"]["batch.gmail"] == 2
