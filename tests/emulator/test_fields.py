"""The partial-response selector: parsing, applying, and checking against discovery schemas."""

from __future__ import annotations

import pytest

from monolyth_pipelines.emulator.fields import FieldMask, FieldMaskError
from monolyth_pipelines.emulator.schemas import schemas

RESOURCE = {
    "kind": "drive#fileList",
    "nextPageToken": "t",
    "files": [
        {"id": "1", "name": "a", "owners": [{"emailAddress": "x@e.com", "displayName": "X"}], "size": "3"},
        {"id": "2", "name": "b"},
    ],
    "payload": {"body": {"size": 1, "data": "QQ", "attachmentId": "A"}, "parts": [{"partId": "0", "x": 1}]},
}


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ("kind", {"kind": "drive#fileList"}),
        ("*", RESOURCE),
        ("files(id)", {"files": [{"id": "1"}, {"id": "2"}]}),
        ("files/id,nextPageToken", {"nextPageToken": "t", "files": [{"id": "1"}, {"id": "2"}]}),
        ("files(owners(emailAddress))", {"files": [{"owners": [{"emailAddress": "x@e.com"}]}, {}]}),
        (
            "files(owners/emailAddress,size)",
            {"files": [{"owners": [{"emailAddress": "x@e.com"}], "size": "3"}, {}]},
        ),
        ("payload(body/size,body/attachmentId)", {"payload": {"body": {"size": 1, "attachmentId": "A"}}}),
        ("payload(body(size),parts(partId))", {"payload": {"body": {"size": 1}, "parts": [{"partId": "0"}]}}),
        ("files(id), files", {"files": RESOURCE["files"]}),
        ("files, files(id)", {"files": RESOURCE["files"]}),
        ("files(id),files(name)", {"files": [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]}),
        ("files(*)", {"files": RESOURCE["files"]}),
        ("missing", {}),
    ],
)
def test_apply(mask: str, expected: object) -> None:
    assert FieldMask.parse(mask).apply(RESOURCE) == expected


@pytest.mark.parametrize("bad", ["", "a,", "a(b", "a(b))", "a//b", "(a)", "a b", "a(,)"])
def test_malformed_selectors(bad: str) -> None:
    with pytest.raises(FieldMaskError):
        FieldMask.parse(bad)


def test_wanted_and_sub() -> None:
    mask = FieldMask.parse("nextPageToken,files(id,owners(emailAddress))")
    assert mask.wanted() == {"nextPageToken", "files"}
    files = mask.sub("files")
    assert files is not None and files.wanted() == {"id", "owners"}
    assert mask.sub("nextPageToken") is None
    assert FieldMask.parse("*").wanted() is None


def test_validation_against_discovery_schemas() -> None:
    drive, gmail = schemas("drive.v3"), schemas("gmail.v1")
    FieldMask.parse("nextPageToken,files(id,owners(emailAddress),exportLinks,capabilities/canEdit)").validate(
        drive, "FileList"
    )
    FieldMask.parse("messages(payload(parts(parts(body/attachmentId))))").validate(gmail, "Thread")
    for bad, root in [
        ("files(nope)", "FileList"),
        ("files/id/x", "FileList"),
        ("messages(payload/bogus)", "Thread"),
        ("historyId(id)", "Profile"),
    ]:
        with pytest.raises(FieldMaskError):
            FieldMask.parse(bad).validate(gmail if root in ("Thread", "Profile") else drive, root)
