"""A Gmail message's MIME structure, built on demand from a compact spec.

A stored message keeps only its headers, a layout name, a body seed and attachment specs. The
part tree, the Gmail ``payload`` JSON, ``raw`` RFC 822 bytes and attachment bytes are derived
from that when asked for, so a mailbox costs memory in proportion to its messages and no
attachment bytes are ever kept.

Layouts: ``plain`` (text/plain), ``alternative`` (text + html), ``mixed`` (alternative and
attachments), ``related`` (html with inline images, inside mixed when there are attachments too)
``deep`` (the first attachment sits three multipart levels down, as in forwarded mail) and
``forwarded``: an HTML body whose ``multipart/mixed`` sits in ``multipart/alternative`` in
``multipart/related`` (the second attachment is there), then a chain of ``forwards`` forwarded
``message/rfc822`` parts around a message holding the first attachment, ``2 * forwards + 3``
levels down (7 for the default two forwards).
"""

from __future__ import annotations

import base64
import hashlib
import html
import quopri
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import Header
from email.utils import encode_rfc2231
from typing import Any

from monolyth_pipelines.emulator.content import BinaryContent, sentences

LAYOUTS = ("plain", "alternative", "mixed", "related", "deep", "forwarded")
ATTACHMENT_ID_PREFIX = "ANGjdJ"
MESSAGE_RFC822 = "message/rfc822"


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    filename: str
    mime: str
    size: int
    inline: bool = False  # an inline image of the html body (Content-ID, disposition inline)


@dataclass(slots=True)
class MessageSpec:
    headers: tuple[tuple[str, str], ...]  # top-level headers in order, values as sent on the wire
    layout: str = "alternative"
    body_seed: int = 0
    body_text: str | None = None
    attachments: tuple[AttachmentSpec, ...] = ()
    forwards: int = 2  # layout "forwarded": how many message/rfc822 levels wrap the first attachment


@dataclass(slots=True)
class Part:
    mime: str
    headers: list[tuple[str, str]]
    filename: str = ""
    data: bytes | None = None  # decoded body of a text leaf
    attachment: AttachmentSpec | None = None
    children: list[Part] = field(default_factory=list)
    part_id: str = ""

    def walk(self) -> Iterator[Part]:
        yield self
        for child in self.children:
            yield from child.walk()


def body_text(spec: MessageSpec) -> str:
    if spec.body_text is not None:
        return spec.body_text
    rng = random.Random(spec.body_seed)
    greeting = rng.choice(("Hi,", "Hello team,", "Dear colleague,", "Hey there,", "Good morning,"))
    paragraphs = [" ".join(sentences(rng, rng.randint(1, 4))) for _ in range(rng.randint(1, 4))]
    sign_off = rng.choice(("Best regards", "Thanks", "Cheers", "Kind regards"))
    return "\r\n\r\n".join([greeting, *paragraphs, sign_off + ",\r\nSent from the emulator"]) + "\r\n"


def snippet_of(spec: MessageSpec) -> str:
    """Gmail's snippet: the start of the text body, whitespace collapsed, HTML-escaped."""
    text = " ".join(body_text(spec).split())[:200]
    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


def _boundary(message_id: str, depth: int) -> str:
    return "000000000000" + hashlib.sha1(f"{message_id}:{depth}".encode()).hexdigest()[:16]


def _param(name: str, value: str) -> str:
    if value.isascii():
        return f'{name}="{value}"'
    return f"{name}*={encode_rfc2231(value, 'utf-8')}"


def _attachment_part(spec: AttachmentSpec, message_id: str, index: int) -> Part:
    token = hashlib.sha1(f"{message_id}:{index}".encode()).hexdigest()[:9]
    name_param = (
        f'name="{spec.filename}"'
        if spec.filename.isascii()
        else ('name="' + Header(spec.filename, "utf-8").encode() + '"')
    )
    disposition = "inline" if spec.inline else "attachment"
    headers = [
        ("Content-Type", f"{spec.mime}; {name_param}"),
        ("Content-Disposition", f"{disposition}; {_param('filename', spec.filename)}"),
        ("Content-Transfer-Encoding", "base64"),
    ]
    if spec.inline:
        headers.append(("Content-ID", f"<ii_{token}>"))
        headers.append(("X-Attachment-Id", f"ii_{token}"))
    else:
        headers.append(("Content-ID", f"<f_{token}>"))
        headers.append(("X-Attachment-Id", f"f_{token}"))
    return Part(spec.mime, headers, filename=spec.filename, attachment=spec)


def _multipart(subtype: str, message_id: str, depth: int, children: list[Part]) -> Part:
    content_type = f'multipart/{subtype}; boundary="{_boundary(message_id, depth)}"'
    return Part(f"multipart/{subtype}", [("Content-Type", content_type)], children=children)


def build_tree(spec: MessageSpec, message_id: str) -> Part:
    """The message's MIME tree with Gmail part ids ("" for the root, then "0", "1.0", ...)."""
    text = body_text(spec)
    plain = Part(
        "text/plain",
        [("Content-Type", 'text/plain; charset="UTF-8"'), ("Content-Transfer-Encoding", "quoted-printable")],
        data=text.encode("utf-8"),
    )
    escaped = "<br>".join(html.escape(line) for line in text.split("\r\n"))
    html_part = Part(
        "text/html",
        [("Content-Type", 'text/html; charset="UTF-8"'), ("Content-Transfer-Encoding", "quoted-printable")],
        data=f'<div dir="ltr">{escaped}</div>\r\n'.encode(),
    )
    attachments = [_attachment_part(a, message_id, i) for i, a in enumerate(spec.attachments)]
    inline = [p for p in attachments if p.attachment is not None and p.attachment.inline]
    regular = [p for p in attachments if p not in inline]
    layout = spec.layout

    if layout == "plain" and not attachments:
        root = plain
    elif layout in ("plain", "alternative") and not attachments:
        root = _multipart("alternative", message_id, 1, [plain, html_part])
    elif layout == "deep" and regular:
        intro = Part(
            "text/plain",
            [("Content-Type", 'text/plain; charset="UTF-8"')],
            data=b"---------- Forwarded message ---------\r\n",
        )
        innermost = _multipart("mixed", message_id, 3, [regular[0]])
        middle = _multipart("mixed", message_id, 2, [intro, innermost])
        body = _multipart("alternative", message_id, 1, [plain, html_part])
        root = _multipart("mixed", message_id, 0, [body, middle, *inline, *regular[1:]])
    elif layout == "forwarded" and regular:
        root = _forwarded(spec, message_id, plain, html_part, regular, inline)
    else:
        body = _multipart("alternative", message_id, 1, [plain, html_part])
        if inline:
            body = _multipart("related", message_id, 2, [body, *inline])
        root = _multipart("mixed", message_id, 0, [body, *regular]) if regular else body

    root.headers = [*spec.headers, ("MIME-Version", "1.0"), *root.headers]
    _number(root, "")
    return root


def _text(mime: str, text: str) -> Part:
    return Part(mime, [("Content-Type", f'{mime}; charset="UTF-8"')], data=text.encode())


def _forwarded(
    spec: MessageSpec, message_id: str, plain: Part, html_part: Part, regular: list[Part], inline: list[Part]
) -> Part:
    """Forwarded mail as clients build it: each forward wraps the previous message whole."""
    boundaries = iter(range(10, 10_000))

    def multipart(subtype: str, children: list[Part]) -> Part:
        return _multipart(subtype, message_id, next(boundaries), children)

    first, *rest = regular
    note = _text("text/plain", "See the signed copy attached.\r\n")
    message = multipart(
        "mixed",
        [
            multipart("alternative", [_text("text/plain", "Original\r\n"), _text("text/html", "<p>x</p>")]),
            multipart("related", [multipart("mixed", [note, first])]),
        ],
    )
    message.headers = [("From", "origin@example.org"), ("Subject", "Original"), *message.headers]
    for n in range(max(1, spec.forwards)):
        wrapped = Part("message/rfc822", [("Content-Type", "message/rfc822")], children=[message])
        intro = _text("text/plain", "---------- Forwarded message ---------\r\n")
        message = multipart("mixed", [intro, wrapped])
        forwarder = [("From", f"fwd{n}@example.org"), ("Subject", f"Fwd{n}: Original")]
        message.headers = [*forwarder, *message.headers]
    # The outer message: the HTML body's mixed part inside alternative inside related.
    html_side = multipart("mixed", [html_part, *rest[:1]])
    body = multipart("related", [multipart("alternative", [plain, html_side]), *inline])
    return multipart("mixed", [body, message.children[1], *rest[1:]])


def _number(part: Part, part_id: str) -> None:
    part.part_id = part_id
    for index, child in enumerate(part.children):
        _number(child, f"{part_id}.{index}" if part_id else str(index))


def attachment_id(message_id: str, part_id: str) -> str:
    token = base64.urlsafe_b64encode(f"{message_id}/{part_id}".encode()).decode().rstrip("=")
    return ATTACHMENT_ID_PREFIX + token


def parse_attachment_id(value: str) -> tuple[str, str] | None:
    if not value.startswith(ATTACHMENT_ID_PREFIX):
        return None
    token = value[len(ATTACHMENT_ID_PREFIX) :]
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    message_id, _, part_id = decoded.partition("/")
    return (message_id, part_id) if message_id else None


def attachment_content(message_id: str, part: Part) -> BinaryContent:
    assert part.attachment is not None
    return BinaryContent(part.attachment.mime, part.attachment.size, f"{message_id}:{part.part_id}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def part_json(part: Part, message_id: str) -> dict[str, Any]:
    """The Gmail ``MessagePart`` of format=full."""
    if part.children:
        body: dict[str, Any] = {"size": 0}
    elif part.attachment is not None:
        body = {"attachmentId": attachment_id(message_id, part.part_id), "size": part.attachment.size}
    else:
        data = part.data or b""
        body = {"size": len(data), "data": b64url(data)}
    out: dict[str, Any] = {
        "partId": part.part_id,
        "mimeType": part.mime,
        "filename": part.filename,
        "headers": [{"name": name, "value": value} for name, value in part.headers],
        "body": body,
    }
    if part.children:
        out["parts"] = [part_json(child, message_id) for child in part.children]
    return out


def size_estimate(root: Part) -> int:
    """Roughly the RFC 822 size: headers, text bodies, base64-inflated attachments, boundaries."""
    total = 0
    for part in root.walk():
        total += sum(len(name) + len(value) + 4 for name, value in part.headers) + 2
        if part.attachment is not None:
            encoded = (part.attachment.size + 2) // 3 * 4
            total += encoded + encoded // 76 * 2
        elif part.data is not None:
            total += len(part.data)
        total += 60 * len(part.children)
    return total


def render_raw(root: Part, message_id: str) -> bytes:
    """The message as RFC 822 bytes (CRLF line ends), attachments included."""
    out = bytearray()
    _render(root, message_id, out)
    return bytes(out)


def _render(part: Part, message_id: str, out: bytearray) -> None:
    for name, value in part.headers:
        out += f"{name}: {value}\r\n".encode()
    out += b"\r\n"
    if part.mime == MESSAGE_RFC822 and part.children:
        _render(part.children[0], message_id, out)
    elif part.children:
        boundary = part.headers[-1][1].split('boundary="', 1)[1].rstrip('"')
        for child in part.children:
            out += f"--{boundary}\r\n".encode()
            _render(child, message_id, out)
            out += b"\r\n"
        out += f"--{boundary}--\r\n".encode()
    elif part.attachment is not None:
        out += base64.encodebytes(attachment_content(message_id, part).read()).replace(b"\n", b"\r\n")
    else:
        # quopri escapes a bare CR, so encode LF-only text and restore CRLF afterwards.
        encoded = quopri.encodestring((part.data or b"").replace(b"\r\n", b"\n"))
        out += encoded.replace(b"\n", b"\r\n")
