"""Drive v3 through the real client: listing, q, orderBy, fields, shared drives, changes, content."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload

from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.emulator.drive import DOCS, FOLDER, SHEETS, SLIDES
from tests.emulator.conftest import Served, drive_client

ALL_DRIVES = {"corpora": "allDrives", "includeItemsFromAllDrives": True, "supportsAllDrives": True}
SUPPORTED = ("application/vnd.google-apps.document", "application/pdf")


def list_all(request_factory: Any, **kwargs: Any) -> list[list[dict[str, Any]]]:
    """Every page of a files.list, following nextPageToken."""
    pages = []
    token = None
    while True:
        page = request_factory(pageToken=token, **kwargs).execute()
        pages.append(page)
        token = page.get("nextPageToken")
        if token is None:
            return pages


def error_of(call: Any) -> tuple[int, str, dict[str, Any]]:
    with pytest.raises(HttpError) as caught:
        call.execute()
    detail = caught.value.error_details[0]
    return caught.value.status_code, detail["reason"], detail


@pytest.fixture
def big(emu: GoogleEmulator) -> Any:
    account = emu.add_account("bob@example.com", drive_files=1200)
    with emu.serve() as base_url:
        yield Served(emu, account, base_url)


def test_pages_follow_tokens_and_cover_every_visible_file(big: Served) -> None:
    files = big.drive.files()
    pages = list_all(files.list, fields="nextPageToken,files(id)")
    expected = [f["id"] for f in big.emu.drive(big.account).files(include_shared_drives=False)]
    assert [len(p["files"]) for p in pages[:-1]] == [100] * (len(pages) - 1)
    assert all("nextPageToken" in p for p in pages[:-1]) and "nextPageToken" not in pages[-1]
    assert [f["id"] for p in pages for f in p["files"]] == expected
    # Over the maximum is coerced to 1000, as the discovery document says.
    assert len(files.list(pageSize=5000, fields="files(id)", **ALL_DRIVES).execute()["files"]) == 1000


def test_strict_limits_refuse_over_maximum_page_sizes() -> None:
    emu = GoogleEmulator(seed=3, strict_limits=True)
    account = emu.add_account("a@example.com", drive_files=3)
    with emu.serve() as base_url:
        status, reason, detail = error_of(drive_client(base_url, account).files().list(pageSize=1001))
    assert (status, reason, detail["location"]) == (400, "invalid", "pageSize")


def test_q_terms_the_connector_uses(big: Served) -> None:
    q = (
        "(mimeType = 'application/vnd.google-apps.document' or mimeType = 'application/pdf') "
        "and trashed = false and modifiedTime > '2023-06-01T00:00:00'"
    )
    pages = list_all(
        big.drive.files().list, q=q, pageSize=1000, fields="nextPageToken,files(id)", **ALL_DRIVES
    )
    got = [f["id"] for p in pages for f in p["files"]]
    expected = [
        f["id"]
        for f in big.emu.drive(big.account).files()
        if f["mimeType"] in SUPPORTED and not f["trashed"] and f["modifiedTime"] > "2023-06-01T00:00:00"
    ]
    assert got == expected and len(got) > 50


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"pageToken": "garbage"}, "pageToken"),
        ({"q": "mimeType = "}, "q"),
        ({"q": "name = 'x' and (trashed = false"}, "q"),
        ({"q": "title = 'x'"}, "q"),
        ({"q": "modifiedTime > 'yesterday'"}, "q"),
        ({"orderBy": "size"}, "orderBy"),
        ({"orderBy": "modifiedTime sideways"}, "orderBy"),
        ({"pageSize": 0}, "pageSize"),
        ({"corpora": "drive"}, "driveId"),
        ({"corpora": "everything"}, "corpora"),
        ({"fields": "files(id,nope)"}, "fields"),
        ({"fields": "files(id"}, "fields"),
    ],
)
def test_bad_parameters_answer_400(served: Served, params: dict[str, Any], location: str) -> None:
    status, _, detail = error_of(served.drive.files().list(**params))
    assert status == 400
    assert detail["location"] == location


def test_owner_and_parent_terms(served: Served) -> None:
    store = served.emu.drive(served.account)
    files = store.files(include_shared_drives=False)
    mine = served.drive.files().list(q="'me' in owners", pageSize=1000, fields="files(id)").execute()["files"]
    assert [f["id"] for f in mine] == [f["id"] for f in files if f.get("ownedByMe")]
    at_root = (
        served.drive.files()
        .list(q="'root' in parents and trashed = false", pageSize=1000, fields="files(id)")
        .execute()["files"]
    )
    assert [f["id"] for f in at_root] == [
        f["id"] for f in files if f.get("parents") == [store.root_id] and not f["trashed"]
    ]
    shared_with_me = (
        served.drive.files().list(q="sharedWithMe = true", fields="files(owners)").execute()["files"]
    )
    assert shared_with_me and all(
        o["emailAddress"] != served.account.email for f in shared_with_me for o in f["owners"]
    )


def test_a_token_only_continues_its_own_query(served: Served) -> None:
    first = served.drive.files().list(pageSize=5, q="trashed = false").execute()
    status, _, detail = error_of(served.drive.files().list(pageSize=5, pageToken=first["nextPageToken"]))
    assert (status, detail["location"]) == (400, "pageToken")


@pytest.mark.parametrize("order", ["modifiedTime", "modifiedTime desc", "name,createdTime desc"])
def test_order_by_across_pages(big: Served, order: str) -> None:
    pages = list_all(
        big.drive.files().list,
        orderBy=order,
        pageSize=300,
        fields="nextPageToken,files(id,name,modifiedTime,createdTime)",
    )
    got = [f for p in pages for f in p["files"]]
    expected = big.emu.drive(big.account).files(include_shared_drives=False)
    for key in reversed(order.split(",")):
        name, _, direction = key.partition(" ")
        expected.sort(key=lambda f, name=name: f[name], reverse=direction == "desc")
    assert [f["id"] for f in got] == [f["id"] for f in expected]


def test_order_survives_a_mutation_between_pages(served: Served) -> None:
    drive = served.drive.files()
    first = drive.list(orderBy="modifiedTime", pageSize=10, fields="nextPageToken,files(id)").execute()
    seen = [f["id"] for f in first["files"]]
    store = served.emu.drive(served.account)
    store.modify(seen[0])  # moves to the end of the modifiedTime order
    rest = list_all(drive.list, orderBy="modifiedTime", pageSize=10, fields="nextPageToken,files(id)")
    second = drive.list(
        orderBy="modifiedTime", pageSize=10, pageToken=first["nextPageToken"], fields="files(id)"
    ).execute()
    assert second["files"][0]["id"] == [f["id"] for p in rest for f in p["files"]][9]
    assert seen[0] == rest[-1]["files"][-1]["id"]


def test_fields_masks_return_only_what_is_asked(served: Served) -> None:
    drive = served.drive.files()
    only_ids = drive.list(fields="files(id)", pageSize=20).execute()
    assert set(only_ids) == {"files"} and all(set(f) == {"id"} for f in only_ids["files"])
    nested = drive.list(fields="files(name,owners(emailAddress))", pageSize=20).execute()
    owned = [f for f in nested["files"] if "owners" in f]
    assert owned and all(set(o) == {"emailAddress"} for f in owned for o in f["owners"])
    default = drive.list(pageSize=3).execute()
    assert set(default) == {"kind", "nextPageToken", "incompleteSearch", "files"}
    assert all(set(f) == {"kind", "id", "name", "mimeType"} for f in default["files"])
    one = drive.get(fileId=only_ids["files"][1]["id"], fields="id,version,capabilities/canEdit").execute()
    assert set(one) == {"id", "version"}


def test_file_shapes(served: Served) -> None:
    files = served.drive.files().list(fields="*", pageSize=1000, **ALL_DRIVES).execute()["files"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        by_kind.setdefault(f["mimeType"], []).append(f)
    for f in files:
        binary = not f["mimeType"].startswith("application/vnd.google-apps.")
        assert ("md5Checksum" in f) == binary, f["name"]
        assert "size" not in f or f["size"].isdigit()
        assert f["webViewLink"].startswith("https://")
        assert ("driveId" in f) != ("owners" in f)
    assert all("size" not in f for f in by_kind["application/vnd.google-apps.folder"])
    assert any(int(f["size"]) > 25 * 2**20 for f in by_kind["application/pdf"])
    assert any(f["trashed"] for f in files)
    assert any(len(f["name"]) > 255 for f in files)
    assert any(not f["name"].isascii() for f in files)
    assert len({o["emailAddress"] for f in files for o in f.get("owners", [])}) >= 3


def test_shared_drives(served: Served) -> None:
    store = served.emu.drive(served.account)
    drive_ids = store.shared_drive_ids()
    files = served.drive.files()
    default = list_all(files.list, pageSize=1000, fields="nextPageToken,files(id,driveId)")
    assert all("driveId" not in f for p in default for f in p["files"])
    in_drive = files.list(
        corpora="drive",
        driveId=drive_ids[0],
        includeItemsFromAllDrives=True,
        supportsAllDrives=True,
        fields="files(id,driveId,owners,parents)",
    ).execute()["files"]
    assert in_drive and all(f["driveId"] == drive_ids[0] and "owners" not in f for f in in_drive)
    shared_id = in_drive[0]["id"]
    assert error_of(files.get(fileId=shared_id))[0] == 404
    assert files.get(fileId=shared_id, supportsAllDrives=True, fields="driveId").execute() == {
        "driveId": drive_ids[0]
    }
    assert [d["id"] for d in served.drive.drives().list().execute()["drives"]] == drive_ids
    status, _, detail = error_of(
        files.list(corpora="drive", driveId="0Anope", includeItemsFromAllDrives=True, supportsAllDrives=True)
    )
    assert (status, detail["location"]) == (404, "driveId")


def _changes(served: Served, token: str, **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
    changes = []
    while True:
        page = served.drive.changes().list(pageToken=token, **kwargs).execute()
        changes += page["changes"]
        if "newStartPageToken" in page:
            assert "nextPageToken" not in page
            return changes, page["newStartPageToken"]
        assert "newStartPageToken" not in page
        token = page["nextPageToken"]


def test_mutations_come_back_from_changes_list_in_order(served: Served) -> None:
    store = served.emu.drive(served.account)
    token = served.drive.changes().getStartPageToken().execute()["startPageToken"]
    assert token.isdigit()
    mine = [
        f["id"]
        for f in store.files(include_shared_drives=False)
        if not f["trashed"] and f["mimeType"] != FOLDER
    ]
    new = store.create_file("Fresh.pdf", "application/pdf", size=4000)
    old = store.create_file(
        "Scan 2019.pdf", "application/pdf", size=900, modified_time="2019-05-01T10:00:00Z"
    )
    before = store.file(mine[1])
    store.modify(mine[1])
    store.rename(mine[2], "Renamed")
    store.trash(mine[3])
    store.delete(mine[4])
    store.lose_access(mine[5])

    changes, new_token = _changes(
        served,
        token,
        pageSize=2,
        fields="nextPageToken,newStartPageToken,changes(fileId,removed,file(name,trashed,"
        "version,modifiedTime))",
    )
    assert [c["fileId"] for c in changes] == [
        new["id"],
        old["id"],
        mine[1],
        mine[2],
        mine[3],
        mine[4],
        mine[5],
    ]
    assert [c["removed"] for c in changes] == [False] * 5 + [True, True]
    assert all("file" not in c for c in changes[5:])
    assert changes[1]["file"]["modifiedTime"] == "2019-05-01T10:00:00.000Z"
    assert int(changes[2]["file"]["version"]) == int(before["version"]) + 1
    assert changes[2]["file"]["modifiedTime"] > before["modifiedTime"]
    assert changes[3]["file"]["name"] == "Renamed"
    assert changes[4]["file"]["trashed"] is True
    assert new_token == served.drive.changes().getStartPageToken().execute()["startPageToken"]
    assert int(new_token) == int(token) + 7
    # Nothing new since: an empty page with the same token.
    assert served.drive.changes().list(pageToken=new_token).execute()["changes"] == []
    # Deleted or unshared files answer 404; a trashed one is still there.
    for gone in (mine[4], mine[5]):
        assert error_of(served.drive.files().get(fileId=gone))[0] == 404
    assert served.drive.files().get(fileId=mine[3], fields="trashed").execute() == {"trashed": True}
    # An upload with an old date is not found by a modifiedTime filter, only by changes.
    recent = (
        served.drive.files().list(q="modifiedTime > '2025-01-01T00:00:00Z'", fields="files(id)").execute()
    )
    assert old["id"] not in {f["id"] for f in recent["files"]}


def test_a_file_changed_twice_appears_once_at_its_latest_change(served: Served) -> None:
    store = served.emu.drive(served.account)
    token = store.start_page_token()
    ids = [
        f["id"]
        for f in store.files(include_shared_drives=False)
        if not f["trashed"] and f["mimeType"] != FOLDER
    ]
    store.trash(ids[0])
    store.rename(ids[1], "B")
    store.untrash(ids[0])
    store.trash(ids[2])
    store.delete(ids[2])
    changes, _ = _changes(served, token)
    assert [(c["fileId"], c["removed"]) for c in changes] == [
        (ids[1], False),
        (ids[0], False),
        (ids[2], True),
    ]
    assert "trashed" not in changes[1]["file"]  # default fields: kind, id, name, mimeType


def test_trashing_a_folder_trashes_its_contents(served: Served) -> None:
    store = served.emu.drive(served.account)
    folder = next(f for f in store.files() if f["mimeType"] == FOLDER and f["name"] == "Contracts")
    files = store.files()
    inside: list[str] = []
    pending = [folder["id"]]
    while pending:  # every descendant not already in the trash
        parent = pending.pop(0)
        children = [f for f in files if f.get("parents") == [parent] and not f["trashed"]]
        inside += [f["id"] for f in children]
        pending += [f["id"] for f in children if f["mimeType"] == FOLDER]
    assert inside
    token = store.start_page_token()
    store.trash(folder["id"])
    changes, _ = _changes(
        served, token, fields="newStartPageToken,changes(fileId,file(trashed,explicitlyTrashed))"
    )
    assert changes[0]["fileId"] == folder["id"]
    assert sorted(c["fileId"] for c in changes[1:]) == sorted(inside)
    assert changes[0]["file"] == {"trashed": True, "explicitlyTrashed": True}
    assert all(c["file"] == {"trashed": True, "explicitlyTrashed": False} for c in changes[1:])
    store.untrash(folder["id"])
    assert not any(store.file(file_id)["trashed"] for file_id in [folder["id"], *inside])


def test_changes_for_a_shared_drive_and_include_flags(served: Served) -> None:
    store = served.emu.drive(served.account)
    drive_id = store.shared_drive_ids()[0]
    token = served.drive.changes().getStartPageToken(driveId=drive_id, supportsAllDrives=True).execute()
    mine = next(f["id"] for f in store.files(include_shared_drives=False))
    shared = next(f["id"] for f in store.files() if f.get("driveId") == drive_id)
    store.rename(mine, "mine")
    store.rename(shared, "shared")
    feed, _ = _changes(
        served,
        token["startPageToken"],
        driveId=drive_id,
        supportsAllDrives=True,
        includeItemsFromAllDrives=True,
    )
    assert [(c["fileId"], c["driveId"]) for c in feed] == [(shared, drive_id)]
    user_only, _ = _changes(served, token["startPageToken"])
    assert [c["fileId"] for c in user_only] == [mine]
    everything, _ = _changes(
        served, token["startPageToken"], includeItemsFromAllDrives=True, supportsAllDrives=True
    )
    assert [c["fileId"] for c in everything] == [mine, shared]
    store.delete(mine)
    kept, _ = _changes(served, token["startPageToken"], includeRemoved=False)
    assert kept == []


def test_changes_pages_cap_at_50_when_every_field_is_asked(served: Served) -> None:
    store = served.emu.drive(served.account)
    token = store.start_page_token()
    for number in range(60):
        store.create_file(f"f{number}.pdf", "application/pdf", size=100)
    page = served.drive.changes().list(pageToken=token, pageSize=1000, fields="*").execute()
    assert len(page["changes"]) == 50 and "nextPageToken" in page
    page = served.drive.changes().list(pageToken=token, pageSize=1000).execute()
    assert len(page["changes"]) == 60 and "newStartPageToken" in page
    for bad in ("abc", "0", str(int(store.start_page_token()) + 1)):
        assert error_of(served.drive.changes().list(pageToken=bad))[0] == 400


def test_exports(served: Served) -> None:
    store = served.emu.drive(served.account)
    files = store.files()
    export = served.drive.files().export

    def first(mime: str) -> dict[str, Any]:
        return next(f for f in files if f["mimeType"] == mime and not f["trashed"])

    sheet, slides = first(SHEETS), first(SLIDES)
    csv = export(fileId=sheet["id"], mimeType="text/csv").execute()
    assert (
        csv.startswith(b"id,name,amount")
        and len(csv) == store.records[store.by_id[sheet["id"]].seq].export_size
    )
    assert (
        export(fileId=slides["id"], mimeType="text/plain")
        .execute()
        .decode("utf-8-sig")
        .startswith(slides["name"])
    )
    doc = next(f for f in files if f["mimeType"] == DOCS and store.by_id[f["id"]].export_size < 10 * 2**20)
    assert export(fileId=doc["id"], mimeType="application/pdf").execute().startswith(b"%PDF-1.4")
    huge = next(f for f in files if f["mimeType"] == DOCS and store.by_id[f["id"]].export_size > 10 * 2**20)
    for mime in ("text/plain", "application/pdf"):
        assert error_of(export(fileId=huge["id"], mimeType=mime))[:2] == (403, "exportSizeLimitExceeded")
    assert error_of(export(fileId=doc["id"], mimeType="text/csv"))[:2] == (400, "badRequest")
    pdf = first("application/pdf")
    assert error_of(export(fileId=pdf["id"], mimeType="text/plain"))[:2] == (403, "fileNotExportable")
    assert error_of(served.drive.files().get_media(fileId=doc["id"]))[:2] == (403, "fileNotDownloadable")


def test_media_download_matches_size_and_md5_and_changes_with_versions(served: Served) -> None:
    store = served.emu.drive(served.account)
    pdf = next(
        f
        for f in store.files()
        if f["mimeType"] == "application/pdf" and 300_000 < int(f["size"]) < 5 * 2**20
    )

    def download() -> bytes:
        buffer = io.BytesIO()
        downloader = MediaIoBaseDownload(
            buffer, served.drive.files().get_media(fileId=pdf["id"]), chunksize=256 * 1024
        )
        done = False
        while not done:
            _, done = downloader.next_chunk()
        return buffer.getvalue()

    data = download()
    assert len(data) == int(pdf["size"]) and data.startswith(b"%PDF-") and data.endswith(b"%%EOF\n")
    assert hashlib.md5(data).hexdigest() == pdf["md5Checksum"]
    assert served.stats()["statuses"]["drive.files.get_media"] == {"206": -(-len(data) // (256 * 1024))}
    renamed = store.rename(pdf["id"], "renamed.pdf")
    assert renamed["md5Checksum"] == pdf["md5Checksum"] and renamed["version"] != pdf["version"]
    modified = store.modify(pdf["id"], size=70_000)
    again = download()
    assert (
        len(again) == 70_000
        and hashlib.md5(again).hexdigest() == modified["md5Checksum"] != pdf["md5Checksum"]
    )


def test_a_query_longer_than_a_uri_goes_as_post_with_method_override(served: Served) -> None:
    terms = " or ".join(f"mimeType = 'application/x-emulator-{n:04d}'" for n in range(60))
    q = f"({terms} or mimeType = 'application/pdf') and trashed = false"
    assert len(q) > 2048
    found = served.drive.files().list(q=q, pageSize=1000, fields="files(mimeType)").execute()["files"]
    assert found and {f["mimeType"] for f in found} == {"application/pdf"}
