"""Contract: the real client calls every emulated method; every field returned is declared in the
discovery document shipped inside google-api-python-client (walked through ``$ref``s), with the
JSON type the schema declares."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from monolyth_pipelines.emulator.server import ROUTES
from tests.emulator.conftest import Served


def _discovery(api: str) -> dict[str, Any]:
    path = resources.files("googleapiclient") / "discovery_cache" / "documents" / f"{api}.json"
    return json.loads(path.read_text(encoding="utf-8"))


DRIVE = _discovery("drive.v3")
GMAIL = _discovery("gmail.v1")


def _method(doc: dict[str, Any], method_id: str) -> dict[str, Any]:
    def walk(resources_: dict[str, Any]) -> Any:
        for resource in resources_.values():
            for method in resource.get("methods", {}).values():
                if method["id"] == method_id:
                    return method
            found = walk(resource.get("resources", {}))
            if found is not None:
                return found
        return None

    method = walk(doc["resources"])
    assert method is not None, method_id
    return method


def check(value: Any, schema: dict[str, Any], schemas: dict[str, Any], path: str, seen: set[str]) -> None:
    """Fail on any field the schema does not declare, or a JSON type it does not allow."""
    while "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type")
    seen.add(path)
    if kind == "object" or "properties" in schema or "additionalProperties" in schema:
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                check(item, properties[key], schemas, f"{path}.{key}", seen)
            elif additional is not None:
                check(item, additional, schemas, f"{path}.*", seen)
            else:
                pytest.fail(f"{path}.{key} is not declared in the discovery document")
    elif kind == "array":
        assert isinstance(value, list), f"{path}: expected an array"
        for item in value:
            check(item, schema["items"], schemas, f"{path}[]", seen)
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a string (int64 travels as one), got {value!r}"
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: expected an integer"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected a boolean"
    elif kind == "number":
        assert isinstance(value, (int, float)), f"{path}: expected a number"


def conforms(doc: dict[str, Any], method_id: str, response: Any) -> set[str]:
    ref = _method(doc, method_id)["response"]["$ref"]
    seen: set[str] = set()
    check(response, {"$ref": ref}, doc["schemas"], ref, seen)
    return seen


def test_every_drive_method_conforms(served: Served) -> None:
    drive = served.drive
    seen: set[str] = set()
    everything = (
        drive.files()
        .list(
            pageSize=100,
            fields="*",
            includeItemsFromAllDrives=True,
            supportsAllDrives=True,
            corpora="allDrives",
        )
        .execute()
    )
    seen |= conforms(DRIVE, "drive.files.list", everything)
    assert len(everything["files"]) == 60
    seen |= conforms(DRIVE, "drive.files.list", drive.files().list().execute())
    masked = (
        drive.files()
        .list(
            pageSize=7,
            fields="nextPageToken,files(id,name,mimeType,modifiedTime,size,owners(emailAddress),webViewLink,"
            "trashed,driveId,version,md5Checksum,exportLinks)",
        )
        .execute()
    )
    seen |= conforms(DRIVE, "drive.files.list", masked)
    for item in everything["files"]:
        seen |= conforms(
            DRIVE,
            "drive.files.get",
            drive.files().get(fileId=item["id"], fields="*", supportsAllDrives=True).execute(),
        )
    seen |= conforms(
        DRIVE, "drive.files.get", drive.files().get(fileId=everything["files"][1]["id"]).execute()
    )

    token = drive.changes().getStartPageToken().execute()
    seen |= conforms(DRIVE, "drive.changes.getStartPageToken", token)
    store = served.emu.drive(served.account)
    ids = [f["id"] for f in everything["files"] if "driveId" not in f]
    store.trash(ids[3])
    store.delete(ids[4])
    store.rename(ids[5], "renamed")
    shared = next(f["id"] for f in everything["files"] if "driveId" in f)
    store.lose_access(shared)
    for fields in (
        None,
        "*",
        "nextPageToken,newStartPageToken,changes(fileId,removed,time,driveId,file(id,name))",
    ):
        kwargs: dict[str, Any] = {"fields": fields} if fields else {}
        changes = (
            drive.changes()
            .list(
                pageToken=token["startPageToken"],
                includeItemsFromAllDrives=True,
                supportsAllDrives=True,
                **kwargs,
            )
            .execute()
        )
        seen |= conforms(DRIVE, "drive.changes.list", changes)
        assert len(changes["changes"]) == 4
    seen |= conforms(DRIVE, "drive.drives.list", drive.drives().list().execute())
    in_drive = next(f["id"] for f in everything["files"] if "driveId" in f and f["id"] != shared)
    seen |= conforms(
        DRIVE,
        "drive.permissions.list",
        drive.permissions().list(fileId=in_drive, supportsAllDrives=True, fields="*").execute(),
    )
    seen |= conforms(DRIVE, "drive.permissions.list", drive.permissions().list(fileId=ids[0]).execute())
    seen |= conforms(DRIVE, "drive.about.get", drive.about().get(fields="*").execute())
    channel = (
        drive.changes()
        .watch(
            pageToken=token["startPageToken"],
            body={"id": "contract-1", "type": "web_hook", "address": "http://127.0.0.1:9/hook", "token": "t"},
        )
        .execute()
    )
    seen |= conforms(DRIVE, "drive.changes.watch", channel)
    assert (
        drive.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]}).execute() == ""
    )

    # The content methods answer bytes, not JSON.
    doc = next(
        f
        for f in everything["files"]
        if f["mimeType"] == "application/vnd.google-apps.document" and not f["trashed"]
    )
    assert drive.files().export(fileId=doc["id"], mimeType="text/plain").execute().startswith(b"\xef\xbb\xbf")
    pdf = next(
        f for f in everything["files"] if f["mimeType"] == "application/pdf" and int(f["size"]) < 10**6
    )
    assert drive.files().get_media(fileId=pdf["id"]).execute().startswith(b"%PDF-")

    # The walk reached deep, optional and map-typed fields, so it really checked them.
    for path in (
        "FileList.files[].owners[].emailAddress",
        "FileList.files[].exportLinks.*",
        "FileList.files[].md5Checksum",
        "FileList.files[].driveId",
        "ChangeList.changes[].file.trashed",
        "ChangeList.changes[].removed",
        "FileList.files[].shortcutDetails.targetId",
    ):
        assert path in seen, path
    _assert_all_routes_called(served, "drive")


def test_every_gmail_method_conforms(served: Served) -> None:
    gmail = served.gmail.users()
    box = served.emu.gmail(served.account)
    seen: set[str] = set()
    profile = gmail.getProfile(userId="me").execute()
    seen |= conforms(GMAIL, "gmail.users.getProfile", profile)
    seen |= conforms(GMAIL, "gmail.users.labels.list", gmail.labels().list(userId="me").execute())
    seen |= conforms(GMAIL, "gmail.users.labels.get", gmail.labels().get(userId="me", id="Label_1").execute())
    threads = gmail.threads().list(userId="me", maxResults=500, includeSpamTrash=True).execute()
    seen |= conforms(GMAIL, "gmail.users.threads.list", threads)
    for item in threads["threads"]:
        for fmt in ("full", "metadata", "minimal"):
            seen |= conforms(
                GMAIL,
                "gmail.users.threads.get",
                gmail.threads().get(userId="me", id=item["id"], format=fmt).execute(),
            )
    seen |= conforms(
        GMAIL,
        "gmail.users.threads.get",
        gmail.threads()
        .get(
            userId="me",
            id=threads["threads"][0]["id"],
            format="metadata",
            metadataHeaders=["From", "Subject"],
            fields="id,messages(id,payload/headers)",
        )
        .execute(),
    )
    messages = gmail.messages().list(userId="me", maxResults=20).execute()
    seen |= conforms(GMAIL, "gmail.users.messages.list", messages)
    for item in messages["messages"]:
        for fmt in ("full", "metadata", "minimal", "raw"):
            seen |= conforms(
                GMAIL,
                "gmail.users.messages.get",
                gmail.messages().get(userId="me", id=item["id"], format=fmt).execute(),
            )
    with_attachment = next(
        m for m in box.messages.values() if m.spec.attachments and m.spec.attachments[0].size < 10**6
    )
    full = gmail.messages().get(userId="me", id=with_attachment.id).execute()
    attachment_id = next(_attachment_ids(full["payload"]))
    body = (
        gmail.messages()
        .attachments()
        .get(userId="me", messageId=with_attachment.id, id=attachment_id)
        .execute()
    )
    seen |= conforms(GMAIL, "gmail.users.messages.attachments.get", body)

    new = box.deliver(
        subject="New",
        labels=["INBOX", "UNREAD", "Contracts"],
        attachments=[("a.pdf", "application/pdf", 900)],
    )
    box.relabel(message_id=new["id"], add=["STARRED"], remove=["UNREAD"])
    box.delete_message(new["id"])
    history = gmail.history().list(userId="me", startHistoryId=profile["historyId"]).execute()
    seen |= conforms(GMAIL, "gmail.users.history.list", history)
    assert len(history["history"]) == 4  # added, label added, label removed, deleted

    for path in (
        "Thread.messages[].payload.parts[].parts[].body.attachmentId",
        "Thread.messages[].payload.headers[].value",
        "Message.raw",
        "Message.sizeEstimate",
        "ListHistoryResponse.history[].labelsAdded[].labelIds[]",
        "ListHistoryResponse.history[].messagesDeleted[].message.id",
        "MessagePartBody.data",
    ):
        assert path in seen, path
    watch = gmail.watch(userId="me", body={"topicName": "projects/p/topics/t"}).execute()
    seen |= conforms(GMAIL, "gmail.users.watch", watch)
    assert gmail.stop(userId="me").execute() == ""
    _assert_all_routes_called(served, "gmail")


def _attachment_ids(part: dict[str, Any]) -> Any:
    if part.get("body", {}).get("attachmentId"):
        yield part["body"]["attachmentId"]
    for child in part.get("parts", []):
        yield from _attachment_ids(child)


def _assert_all_routes_called(served: Served, api: str) -> None:
    called = set(served.stats()["api_calls"])
    missing = {route.endpoint for route in ROUTES if route.api == api} - called
    assert not missing, f"routes the contract test never called: {missing}"
