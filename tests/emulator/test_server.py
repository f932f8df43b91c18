"""The HTTP layer: concurrency, unknown paths, and a clean stop."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from monolyth_pipelines.emulator import GoogleEmulator
from tests.emulator.conftest import Served, drive_client, gmail_client


def test_concurrent_clients(emu: GoogleEmulator) -> None:
    accounts = [emu.add_account(f"u{n}@example.com", drive_files=30, gmail_threads=5) for n in range(4)]
    with emu.serve() as base_url:

        def work(index: int) -> int:
            account = accounts[index % 4]
            drive, gmail = drive_client(base_url, account), gmail_client(base_url, account)
            seen = 0
            for _ in range(10):
                seen += len(drive.files().list(pageSize=10).execute()["files"])
                seen += gmail.users().getProfile(userId="me").execute()["threadsTotal"]
            return seen

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(work, range(8)))
    assert results == [150] * 8
    total = emu.stats_total()
    assert total["api_calls"] == {"drive.files.list": 80, "gmail.users.getProfile": 80}
    assert total["totals"]["errors"] == 0


def test_unknown_paths_and_methods_are_404_in_googles_shape(served: Served) -> None:
    for path in ("/drive/v2/files", "/gmail/v1/users/me/drafts", "/nothing"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(served.base_url + path)
        assert caught.value.code == 404
        assert json.loads(caught.value.read())["error"]["status"] == "NOT_FOUND"


def test_stop_closes_the_port_and_open_connections(emu: GoogleEmulator) -> None:
    account = emu.add_account("a@example.com", drive_files=2)
    base_url = emu.start()
    drive = drive_client(base_url, account)
    drive.files().list().execute()  # leaves a keep-alive connection open
    port = int(base_url.rsplit(":", 1)[1])
    emu.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with emu.serve() as again:  # the same emulator can serve again, on a new port
        assert drive_client(again, account).files().list().execute()["files"]
