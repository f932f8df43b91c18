"""The generated corpus: deterministic per seed and account, realistic in mix, compact in memory."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter

from monolyth_pipelines.emulator import GoogleEmulator


def _snapshot(seed: int, *emails: str) -> tuple[str, str]:
    emu = GoogleEmulator(seed=seed)
    for email in emails:
        emu.add_account(email, drive_files=150, gmail_threads=30)
    drive = emu.drive("alice@example.com").files()
    mail = emu.gmail("alice@example.com").threads_list(format="full")
    return json.dumps(drive, sort_keys=True), json.dumps(mail, sort_keys=True)


def test_same_seed_same_corpus_and_accounts_are_independent() -> None:
    first = _snapshot(4, "alice@example.com")
    assert _snapshot(4, "alice@example.com") == first
    assert _snapshot(4, "bob@example.com", "alice@example.com") == first
    other = _snapshot(5, "alice@example.com")
    assert other[0] != first[0] and other[1] != first[1]


def test_drive_mix() -> None:
    emu = GoogleEmulator(seed=1)
    files = emu.drive(emu.add_account("a@example.com", drive_files=2000)).files()
    kinds = Counter(f["mimeType"] for f in files)
    for mime in (
        "application/vnd.google-apps.document",
        "application/vnd.google-apps.spreadsheet",
        "application/vnd.google-apps.presentation",
        "application/pdf",
        "image/jpeg",
        "application/vnd.google-apps.folder",
        "application/vnd.google-apps.shortcut",
        "video/mp4",
    ):
        assert kinds[mime] > 0, mime
    assert 0.2 < kinds["application/vnd.google-apps.document"] / len(files) < 0.3
    assert sum(f["trashed"] for f in files) > 40
    shared = [f for f in files if "driveId" in f]
    assert len(shared) > 100
    assert all("owners" not in f and f["parents"] == [f["driveId"]] for f in shared)
    assert sum(1 for f in files if f["mimeType"] == "application/pdf" and int(f["size"]) > 25 * 2**20) > 3
    assert sum(1 for f in files if not f["name"].isascii()) > 50
    assert all(f["createdTime"] <= f["modifiedTime"] for f in files)
    assert all(isinstance(f["version"], str) and f["version"].isdigit() for f in files)


def test_mailbox_mix() -> None:
    emu = GoogleEmulator(seed=1)
    box = emu.gmail(emu.add_account("a@example.com", gmail_threads=300))
    threads = box.threads_list()
    sizes = Counter(min(len(t["messages"]), 9) for t in threads)
    assert sizes[1] > 100 and sizes[9] > 0
    labels = Counter(label for m in box.messages.values() for label in m.labels)
    assert labels["Label_1"] > 50 and labels["SENT"] > 20 and labels["UNREAD"] > 10
    layouts = Counter(m.spec.layout for m in box.messages.values())
    assert set(layouts) == {"plain", "alternative", "mixed", "related", "deep"}
    ids = [int(m.id, 16) for m in sorted(box.messages.values(), key=lambda m: m.internal_ms)]
    assert ids == sorted(ids)  # Gmail ids grow with time
    assert all(t["historyId"] == max(m["historyId"] for m in t["messages"]) for t in threads)


def test_memory_tracks_the_corpus_not_the_requests() -> None:
    emu = GoogleEmulator(seed=1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        account = emu.add_account("a@example.com", drive_files=5_000)
        per_file = (tracemalloc.get_traced_memory()[0] - before) / 5_000
        token = account.authorized_user_info()["token"]
        fields = "nextPageToken,files(id,name,mimeType,modifiedTime,size,md5Checksum,owners(emailAddress))"

        def list_everything() -> int:
            target, count = f"/drive/v3/files?pageSize=500&fields={fields}", 0
            while True:
                body = json.loads(emu.handle("GET", target, {"Authorization": f"Bearer {token}"}).read_all())
                count += len(body["files"])
                if "nextPageToken" not in body:
                    return count
                target = f"/drive/v3/files?pageSize=500&fields={fields}&pageToken={body['nextPageToken']}"

        list_everything()
        after_first = tracemalloc.get_traced_memory()[0]
        for _ in range(2):
            list_everything()
        growth = tracemalloc.get_traced_memory()[0] - after_first
    finally:
        tracemalloc.stop()
    assert per_file < 1_000, per_file
    assert growth < 200_000, growth
