"""Hypothesis strategies for Google payloads that break the documented shape: missing fields,
wrong types, null lists, unparsable dates, lone surrogates, oversize strings, huge numbers."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from monolyth_pipelines.settings import PDF_MIME

SURROGATE = st.characters(categories=("Cs",))
odd_text = st.one_of(
    st.text(max_size=12),
    st.text(st.one_of(SURROGATE, st.characters()), min_size=1, max_size=12),
    st.sampled_from(["", " ", "not a date", "2025-13-45T99:99:99Z", "a\x00b", "\ud800", "=?UTF-8?B?////?="]),
    st.integers(min_value=1, max_value=3).map(lambda n: "x" * (40_000 * n)),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)
json_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
hostile = st.one_of(scalar, json_value, st.just([]), st.just({}))

GOOD_FILE: dict[str, Any] = {
    "id": "f",
    "name": "Signed NDA",
    "mimeType": PDF_MIME,
    "modifiedTime": "2025-11-27T10:00:00.000Z",
    "size": "1234",
    "owners": [{"emailAddress": "jane@acme.example"}],
    "webViewLink": "https://drive.google.com/file/d/f/view",
    "trashed": False,
    "driveId": None,
    "version": "7",
    "md5Checksum": "0123456789abcdef",
    "ownedByMe": True,
    "parents": ["root"],
}


@st.composite
def drive_files(draw: st.DrawFn, file_id: str = "f") -> Any:
    """A Drive File with some fields missing or replaced, or now and then not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(hostile)
    file = {**GOOD_FILE, "id": file_id}
    for key in draw(st.sets(st.sampled_from(sorted(GOOD_FILE)), max_size=4)):
        if draw(st.booleans()):
            file.pop(key, None)
        else:
            file[key] = draw(hostile)
    return file


def _part(
    part_id: str, mime: str, filename: str = "", size: int = 0, children: list[Any] | None = None
) -> Any:
    part: dict[str, Any] = {"partId": part_id, "mimeType": mime, "filename": filename, "body": {"size": size}}
    if children is not None:
        part["parts"] = children
    if filename:
        part["body"]["attachmentId"] = f"ANG{part_id}"
    return part


def good_message(message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "threadId": "t",
        "labelIds": ["Label_1", "INBOX"],
        "internalDate": "1764237600000",
        "sizeEstimate": 4321,
        "payload": {
            **_part(
                "",
                "multipart/mixed",
                children=[
                    _part("0", "text/plain", size=5),
                    _part("1", "message/rfc822", children=[_part("1.0", "application/pdf", "NDA.pdf", 99)]),
                ],
            ),
            "headers": [
                {"name": "Subject", "value": "Contract"},
                {"name": "From", "value": "Jane <jane@acme.example>"},
                {"name": "Date", "value": "Thu, 27 Nov 2025 10:00:00 +0000"},
                {"name": "Message-ID", "value": "<m@acme.example>"},
            ],
        },
    }


MESSAGE_PATHS = (
    ("id",),
    ("threadId",),
    ("labelIds",),
    ("internalDate",),
    ("sizeEstimate",),
    ("payload",),
    ("payload", "headers"),
    ("payload", "parts"),
    ("payload", "mimeType"),
    ("payload", "parts", 1, "parts", 0, "filename"),
    ("payload", "parts", 1, "parts", 0, "body"),
    ("payload", "parts", 1, "parts", 0, "mimeType"),
    ("payload", "parts", 1, "parts", 0, "partId"),
    ("payload", "headers", 0, "value"),
    ("payload", "headers", 2, "value"),
)


@st.composite
def gmail_messages(draw: st.DrawFn, message_id: str = "m") -> Any:
    """A Gmail Message with values replaced or removed along its tree, or not an object."""
    if draw(st.integers(0, 9)) == 0:
        return draw(hostile)
    message = good_message(message_id)
    for path in draw(st.lists(st.sampled_from(MESSAGE_PATHS), max_size=4)):
        node: Any = message
        for step in path[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(node, dict):
                if draw(st.booleans()):
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = draw(hostile)
            elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
                node[path[-1]] = draw(hostile)
    return message
