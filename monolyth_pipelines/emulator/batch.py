"""Google's batch format: a multipart/mixed body of ``application/http`` parts, answered in kind.

Parsing uses the stdlib ``email`` package. Each inner request is path-only
(``GET /gmail/v1/users/me/threads/t1?format=metadata HTTP/1.1``) with its own headers; headers of
the outer request apply to inner calls that do not set them (Google's rule), which is how an
inner call without ``Authorization`` still authenticates. Answers carry
``Content-ID: <response-ID>`` for the request's ``Content-ID: <ID>``, which
``googleapiclient.http.BatchHttpRequest`` uses to route each answer to its callback.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from http import HTTPStatus

from monolyth_pipelines.emulator.calls import ApiRequest, ApiResponse
from monolyth_pipelines.emulator.errors import ApiError

MAX_CALLS = 100
_OUTER_ONLY = frozenset({"content-type", "content-length", "content-transfer-encoding", "host"})


@dataclass
class InnerCall:
    content_id: str  # without angle brackets
    request: ApiRequest


def parse_batch(content_type: str | None, body: bytes, outer_headers: Mapping[str, str]) -> list[InnerCall]:
    """The inner calls of a batch body. Raises ApiError(400) for a malformed or oversized batch."""
    if not content_type or not content_type.lower().startswith("multipart/mixed"):
        raise ApiError(400, "Batch requests must be multipart/mixed.", "badContent")
    envelope = message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not envelope.is_multipart():
        raise ApiError(400, "Failed to parse batch request.", "badContent")
    parts: list[Message] = envelope.get_payload()  # type: ignore[assignment]
    if len(parts) > MAX_CALLS:
        raise ApiError(
            400,
            f"A batch request cannot contain more than {MAX_CALLS} requests (got {len(parts)}).",
            "batchSizeTooLarge",
        )
    if not parts:
        raise ApiError(400, "The batch request contains no requests.", "badContent")
    inherited = {k: v for k, v in outer_headers.items() if k.lower() not in _OUTER_ONLY}
    return [_inner(part, index, inherited) for index, part in enumerate(parts)]


def _inner(part: Message, index: int, inherited: Mapping[str, str]) -> InnerCall:
    raw_id = part.get("Content-ID") or f"<auto-{index}>"
    content_id = raw_id.strip()
    if content_id.startswith("<") and content_id.endswith(">"):
        content_id = content_id[1:-1]
    payload = part.get_payload(decode=True) or b""
    text = payload.decode("utf-8", "replace").replace("\r\n", "\n")
    request_line, _, rest = text.partition("\n")
    pieces = request_line.split()
    if len(pieces) < 2:
        raise ApiError(400, "Failed to parse batch request: bad request line.", "badContent")
    head, _, inner_body = rest.partition("\n\n")
    inner_headers = HeaderParser().parsestr(head + "\n\n")
    headers = dict(inherited)
    lowered = {k.lower(): k for k in headers}
    for name, value in inner_headers.items():
        if name.lower() in lowered:
            del headers[lowered[name.lower()]]
        headers[name] = value
    request = ApiRequest.from_target(pieces[0].upper(), pieces[1], headers, inner_body.encode("utf-8"))
    return InnerCall(content_id, request)


def render_batch(answers: Sequence[tuple[str, ApiResponse]]) -> tuple[str, bytes]:
    """(Content-Type, body) of the multipart/mixed reply; CRLF line ends throughout."""
    boundary = "batch_" + secrets.token_hex(12)
    out = bytearray()
    for content_id, response in answers:
        out += f"--{boundary}\r\n".encode()
        out += b"Content-Type: application/http\r\n"
        out += f"Content-ID: <response-{content_id}>\r\n\r\n".encode()
        out += f"HTTP/1.1 {response.status} {_reason(response.status)}\r\n".encode()
        out += f"Content-Type: {response.content_type}\r\n".encode()
        for name, value in response.headers:
            out += f"{name}: {value}\r\n".encode()
        data = response.read_all()
        out += f"Content-Length: {len(data)}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", bytes(out)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
