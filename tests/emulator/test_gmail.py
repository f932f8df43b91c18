"""Gmail v1 through the real client: labels, lists, formats, nested field masks, MIME, history."""

from __future__ import annotations

import base64
import email
import email.policy
from email.header import decode_header, make_header
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from monolyth_pipelines.emulator import GoogleEmulator
from tests.emulator.conftest import Served, gmail_client


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(HttpError) as caught:
        call.execute()
    return caught.value.status_code, caught.value.error_details[0]["reason"]


def part_fields(depth: int) -> str:
    scalars = "partId,mimeType,filename,headers,body/size,body/attachmentId"
    return scalars if depth == 0 else f"{scalars},parts({part_fields(depth - 1)})"


NESTED_MASK = (
    "messages(id,threadId,labelIds,sizeEstimate,internalDate,"
    f"payload(headers,mimeType,filename,body/size,body/attachmentId,parts({part_fields(3)})))"
)


def walk_parts(part: dict[str, Any], depth: int = 0) -> Any:
    yield part, depth
    for child in part.get("parts", []):
        yield from walk_parts(child, depth + 1)


def headers_of(message: dict[str, Any]) -> dict[str, str]:
    return {h["name"]: h["value"] for h in message["payload"]["headers"]}


def test_profile_and_labels(served: Served) -> None:
    users = served.gmail.users()
    profile = users.getProfile(userId="me").execute()
    box = served.emu.gmail(served.account)
    live = [m for m in box.messages.values() if not m.deleted]
    assert profile == {
        "emailAddress": served.account.email,
        "messagesTotal": len(live),
        "threadsTotal": 25,
        "historyId": box.current_history_id(),
    }
    labels = {label["id"]: label for label in users.labels().list(userId="me").execute()["labels"]}
    assert labels["Label_1"]["name"] == "Contracts" and labels["Label_1"]["type"] == "user"
    assert {"INBOX", "SENT", "TRASH", "SPAM", "UNREAD", "CATEGORY_PERSONAL"} <= set(labels)
    assert all(labels[i]["type"] == "system" for i in ("INBOX", "UNREAD"))
    contracts = users.labels().get(userId="me", id="Label_1").execute()
    assert contracts["threadsTotal"] == len(box.threads_list(label_ids=["Contracts"]))
    assert error_of(users.labels().get(userId="me", id="Label_404"))[0] == 404


def test_threads_list_is_newest_first_and_pages(served: Served) -> None:
    threads = served.gmail.users().threads()
    got: list[dict[str, Any]] = []
    request = threads.list(userId="me", maxResults=7)
    pages = 0
    while request is not None:
        page = request.execute()
        pages += 1
        got += page["threads"]
        request = threads.list_next(request, page)
    expected = served.emu.gmail(served.account).threads_list()
    expected = [t for t in expected if not all("TRASH" in m.get("labelIds", []) for m in t["messages"])]
    assert [t["id"] for t in got] == [t["id"] for t in expected] and pages == 4
    last_dates = [max(int(m["internalDate"]) for m in t["messages"]) for t in expected]
    assert last_dates == sorted(last_dates, reverse=True)
    assert set(got[0]) == {"id", "snippet", "historyId"}
    with_trash = threads.list(userId="me", includeSpamTrash=True).execute()
    assert len(with_trash["threads"]) == 25 and with_trash["resultSizeEstimate"] == 25


def test_threads_list_filters(served: Served) -> None:
    threads = served.gmail.users().threads()
    box = served.emu.gmail(served.account)
    contracts = [t["id"] for t in box.threads_list(label_ids=["Label_1"])]
    assert contracts
    assert [
        t["id"] for t in threads.list(userId="me", labelIds=["Label_1"]).execute()["threads"]
    ] == contracts
    assert [t["id"] for t in threads.list(userId="me", q="label:Contracts").execute()["threads"]] == contracts
    assert threads.list(userId="me", q="").execute() == threads.list(userId="me").execute()
    both = threads.list(userId="me", labelIds=["Label_1", "INBOX"]).execute().get("threads", [])
    assert {t["id"] for t in both} <= set(contracts)
    assert threads.list(userId="me", q="has:attachment label:Contracts").execute()["threads"]
    assert "threads" not in threads.list(userId="me", q="subject:zzzz-no-such-thing").execute()
    assert error_of(threads.list(userId="me", labelIds=["Label_99"])) == (400, "invalidArgument")
    assert error_of(threads.list(userId="me", pageToken="nope"))[0] == 400


def test_formats(served: Served) -> None:
    threads = served.gmail.users().threads()
    thread_id = served.emu.gmail(served.account).threads_list(label_ids=["Contracts"])[0]["id"]
    full = threads.get(userId="me", id=thread_id).execute()
    assert any("parts" in m["payload"] for m in full["messages"])
    metadata = threads.get(
        userId="me", id=thread_id, format="metadata", metadataHeaders=["From", "Subject"]
    ).execute()
    for message in metadata["messages"]:
        assert set(message["payload"]) == {"mimeType", "headers"}
        assert {h["name"] for h in message["payload"]["headers"]} <= {"From", "Subject"}
    minimal = threads.get(userId="me", id=thread_id, format="minimal").execute()
    assert all(
        "payload" not in m and {"id", "labelIds", "internalDate"} <= set(m) for m in minimal["messages"]
    )
    token = served.account.authorized_user_info()["token"]
    response = served.emu.handle(
        "GET", f"/gmail/v1/users/me/threads/{thread_id}?format=raw", {"Authorization": f"Bearer {token}"}
    )
    assert response.status == 400
    assert error_of(threads.get(userId="me", id="ffffffffffffffff"))[0] == 404


def test_nested_field_mask_returns_only_what_was_asked(served: Served) -> None:
    threads = served.gmail.users().threads()
    box = served.emu.gmail(served.account)
    deep = next(m for m in box.messages.values() if m.spec.layout == "deep" and m.spec.attachments)
    masked = threads.get(userId="me", id=deep.thread_id, fields=NESTED_MASK).execute()
    assert set(masked) == {"messages"}
    allowed_part = {"partId", "mimeType", "filename", "headers", "body", "parts"}
    for message in masked["messages"]:
        assert set(message) <= {"id", "threadId", "labelIds", "sizeEstimate", "internalDate", "payload"}
        for part, depth in walk_parts(message["payload"]):
            assert set(part) <= allowed_part
            assert set(part.get("body", {})) <= {"size", "attachmentId"}
            assert depth <= 4
    target = next(m for m in masked["messages"] if m["id"] == deep.id)
    attachments = [(p["partId"], d) for p, d in walk_parts(target["payload"]) if p.get("filename")]
    assert any(depth == 3 for _, depth in attachments), attachments
    assert all(
        p.get("body", {}).get("attachmentId") for p, _ in walk_parts(target["payload"]) if p.get("filename")
    )


def test_corpus_mail_has_the_awkward_cases(served: Served) -> None:
    messages = served.gmail.users().messages()
    box = served.emu.gmail(served.account)
    subjects: list[str | None] = []
    dates: list[str | None] = []
    froms: list[str] = []
    inline = 0
    for message in box.messages.values():
        full = messages.get(userId="me", id=message.id).execute()
        headers = headers_of(full)
        subjects.append(headers.get("Subject"))
        dates.append(headers.get("Date"))
        froms.append(headers["From"])
        assert headers["Message-ID"].startswith("<")
        assert full["sizeEstimate"] > 0 and full["internalDate"].isdigit() and full["snippet"]
        inline += sum(
            1
            for p, _ in walk_parts(full["payload"])
            if any(h["name"] == "Content-ID" and h["value"].startswith("<ii_") for h in p["headers"])
        )
    encoded = [s for s in subjects if s and "=?" in s]
    assert any("?B?" in s for s in encoded) and any("?Q?" in s for s in encoded)
    assert all(str(make_header(decode_header(s))) for s in encoded)
    assert None in subjects and None in dates
    from email.utils import parsedate_to_datetime

    def parses(value: str) -> bool:
        try:
            return parsedate_to_datetime(value) is not None
        except (TypeError, ValueError):
            return False

    assert any(d and not parses(d) for d in dates)
    assert any("<" in f and not f.startswith("<") for f in froms) and any("=?" in f for f in froms)
    assert inline >= 1


def test_attachments_and_raw(served: Served) -> None:
    users = served.gmail.users()
    box = served.emu.gmail(served.account)
    message = next(
        m for m in box.messages.values() if m.spec.attachments and m.spec.attachments[0].size < 2**20
    )
    full = users.messages().get(userId="me", id=message.id).execute()
    parts = [p for p, _ in walk_parts(full["payload"]) if p["body"].get("attachmentId")]
    assert parts
    for part in parts:
        body = (
            users.messages()
            .attachments()
            .get(userId="me", messageId=message.id, id=part["body"]["attachmentId"])
            .execute()
        )
        data = base64.urlsafe_b64decode(body["data"])
        assert len(data) == body["size"] == part["body"]["size"]
        if part["mimeType"] == "application/pdf":
            assert data.startswith(b"%PDF-")
    assert error_of(users.messages().attachments().get(userId="me", messageId=message.id, id="bogus")) == (
        400,
        "invalidArgument",
    )
    raw = users.messages().get(userId="me", id=message.id, format="raw").execute()
    parsed = email.message_from_bytes(base64.urlsafe_b64decode(raw["raw"]), policy=email.policy.default)
    names = [p.get_filename() for p in parsed.walk() if p.get_filename()]
    assert sorted(names) == sorted(p["filename"] for p in parts)
    assert parsed["Message-ID"] == headers_of(full)["Message-ID"]


def test_mutations_then_history_returns_exactly_them(served: Served) -> None:
    users = served.gmail.users()
    box = served.emu.gmail(served.account)
    start = users.getProfile(userId="me").execute()["historyId"]
    new = box.deliver(
        subject="Signed contract",
        sender="ACME Legal <legal@acme.example>",
        labels=["INBOX", "UNREAD", "Contracts"],
        attachments=[("signed.pdf", "application/pdf", 5000)],
    )
    reply = box.deliver(subject="Re: Signed contract", thread_id=new["threadId"], labels=["SENT"])
    box.relabel(thread_id=new["threadId"], add=["IMPORTANT"], remove=["UNREAD"])
    old = next(t for t in box.threads_list() if t["id"] != new["threadId"])
    box.delete_message(old["messages"][0]["id"])

    history = users.history().list(userId="me", startHistoryId=start).execute()
    records = history["history"]
    assert history["historyId"] == users.getProfile(userId="me").execute()["historyId"]
    assert "nextPageToken" not in history
    ids = [int(r["id"]) for r in records]
    assert ids == sorted(ids) and ids[0] > int(start)
    kinds = [
        next(k for k in ("messagesAdded", "labelsAdded", "labelsRemoved", "messagesDeleted") if k in r)
        for r in records
    ]
    assert kinds == ["messagesAdded", "messagesAdded", "labelsAdded", "labelsRemoved", "messagesDeleted"]
    assert records[0]["messagesAdded"][0]["message"]["id"] == new["id"]
    assert records[1]["messagesAdded"][0]["message"] == {
        "id": reply["id"],
        "threadId": new["threadId"],
        "labelIds": ["SENT"],
    }
    assert [e["labelIds"] for e in records[2]["labelsAdded"]] == [["IMPORTANT"], ["IMPORTANT"]]
    assert [e["message"]["id"] for e in records[3]["labelsRemoved"]] == [new["id"]]  # only it was unread
    assert records[4]["messagesDeleted"][0]["message"]["id"] == old["messages"][0]["id"]

    only_added = (
        users.history().list(userId="me", startHistoryId=start, historyTypes=["messageAdded"]).execute()
    )
    assert [r["id"] for r in only_added["history"]] == [records[0]["id"], records[1]["id"]]
    by_label = users.history().list(userId="me", startHistoryId=start, labelId="Label_1").execute()
    assert [r["id"] for r in by_label["history"]] == [r["id"] for r in records[:4] if r is not records[1]]

    paged: list[str] = []
    request = users.history().list(userId="me", startHistoryId=start, maxResults=2)
    while request is not None:
        page = request.execute()
        paged += [r["id"] for r in page.get("history", [])]
        request = users.history().list_next(request, page)
    assert paged == [r["id"] for r in records]
    # The reply is threaded and the thread is now newest.
    thread = users.threads().get(userId="me", id=new["threadId"]).execute()
    assert [m["id"] for m in thread["messages"]] == [new["id"], reply["id"]]
    assert headers_of(thread["messages"][1])["In-Reply-To"] == headers_of(thread["messages"][0])["Message-ID"]
    assert users.threads().list(userId="me", maxResults=1).execute()["threads"][0]["id"] == new["threadId"]
    assert error_of(users.messages().get(userId="me", id=old["messages"][0]["id"]))[0] == 404


def test_delete_thread(served: Served) -> None:
    users = served.gmail.users()
    box = served.emu.gmail(served.account)
    thread = box.threads_list()[0]
    start = box.current_history_id()
    box.delete_thread(thread["id"])
    assert error_of(users.threads().get(userId="me", id=thread["id"]))[0] == 404
    record = users.history().list(userId="me", startHistoryId=start).execute()["history"][0]
    assert [e["message"]["id"] for e in record["messagesDeleted"]] == [m["id"] for m in thread["messages"]]


def test_history_older_than_the_window_is_404() -> None:
    emu = GoogleEmulator(seed=5, history_retention=3)
    account = emu.add_account("a@example.com", gmail_threads=4)
    with emu.serve() as base_url:
        history = gmail_client(base_url, account).users().history()
        box = emu.gmail(account)
        start = box.current_history_id()
        assert error_of(history.list(userId="me", startHistoryId="1")) == (404, "notFound")
        assert "history" not in history.list(userId="me", startHistoryId=start).execute()
        for number in range(3):
            box.deliver(subject=f"n{number}")
        assert len(history.list(userId="me", startHistoryId=start).execute()["history"]) == 3
        box.deliver(subject="one too many")
        assert error_of(history.list(userId="me", startHistoryId=start)) == (404, "notFound")
        recent = box.current_history_id()
        box.expire_history()
        assert error_of(history.list(userId="me", startHistoryId=str(int(recent) - 1)))[0] == 404
        assert history.list(userId="me", startHistoryId=recent).execute() == {"historyId": recent}
        assert error_of(history.list(userId="me", startHistoryId="abc"))[0] == 400
