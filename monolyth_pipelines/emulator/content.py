"""File and attachment bytes, generated on demand, deterministically, never held whole in memory.

Binary content of ``size`` bytes is a run of whole 64 KiB blocks shared by every file of the same
kind (the first one starts with the format's magic bytes), followed by a short tail unique to the
file and its version. That makes ``md5Checksum`` the true MD5 of what ``alt=media`` serves while
costing only the tail to compute: MD5 mid-states after each shared block are cached once per kind.
Corpus sizes are chosen with short tails, so listing 100,000 files with checksums stays cheap.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator

BLOCK = 64 * 1024
CHUNK = 256 * 1024

_MAGIC: dict[str, bytes] = {
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/gif": b"GIF89a",
    "application/zip": b"PK\x03\x04",
    "video/mp4": b"\x00\x00\x00\x18ftypmp42",
}
_ZIP_LIKE = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")


def _magic(mime: str) -> bytes:
    if mime.startswith(_ZIP_LIKE):
        return _MAGIC["application/zip"]
    return _MAGIC.get(mime, b"")


class _Family:
    """The shared block stream of one kind of file and its cached MD5 mid-states."""

    def __init__(self, magic: bytes) -> None:
        rng = random.Random(b"block:" + magic)
        self.filler = rng.randbytes(BLOCK)
        self.first = (magic + self.filler)[:BLOCK]
        self._states = [hashlib.md5()]
        self._lock = threading.Lock()

    def block(self, index: int) -> bytes:
        return self.first if index == 0 else self.filler

    def state_after(self, blocks: int) -> hashlib._Hash:
        with self._lock:
            while len(self._states) <= blocks:
                state = self._states[-1].copy()
                state.update(self.block(len(self._states) - 1))
                self._states.append(state)
            return self._states[blocks].copy()


_families: dict[bytes, _Family] = {}
_families_lock = threading.Lock()


def _family(mime: str) -> _Family:
    magic = _magic(mime)
    with _families_lock:
        family = _families.get(magic)
        if family is None:
            family = _families[magic] = _Family(magic)
        return family


class BinaryContent:
    """The bytes of one binary file (or Gmail attachment) of a known size."""

    __slots__ = ("_tail", "blocks", "family", "key", "mime", "size")

    def __init__(self, mime: str, size: int, key: str) -> None:
        self.mime = mime
        self.size = size
        self.key = key
        self.family = _family(mime)
        self.blocks = size // BLOCK
        self._tail: bytes | None = None

    def tail(self) -> bytes:
        if self._tail is None:
            length = self.size - self.blocks * BLOCK
            # A digest of the key makes the tail unique; the rest is a slice of the shared
            # filler, far cheaper than drawing fresh random bytes for every file.
            unique = hashlib.sha256(self.key.encode()).digest()
            needed = max(0, length - len(unique))
            offset = (unique[0] * 64) % (BLOCK - needed + 1)
            body = unique + self.family.filler[offset : offset + needed]
            data = (self.family.first[:16] + body)[:length] if self.blocks == 0 else body[:length]
            if self.mime == "application/pdf" and length >= 6:
                data = data[:-6] + b"%%EOF\n"
            self._tail = data
        return self._tail

    def md5(self) -> str:
        state = self.family.state_after(self.blocks)
        state.update(self.tail())
        return state.hexdigest()

    def iter_range(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes in ``[start, end)``, in chunks."""
        end = self.size if end is None else min(end, self.size)
        pos = start
        tail_start = self.blocks * BLOCK
        while pos < end:
            if pos < tail_start:
                index, offset = divmod(pos, BLOCK)
                take = min(BLOCK - offset, end - pos)
                yield self.family.block(index)[offset : offset + take]
            else:
                take = end - pos
                yield self.tail()[pos - tail_start : pos - tail_start + take]
            pos += take

    def read(self) -> bytes:
        return b"".join(self.iter_range())


def short_tail_size(rng: random.Random, approx: int) -> int:
    """A size near ``approx`` whose unique tail is short (see the module docstring)."""
    if approx < BLOCK:
        return max(1, approx)
    return (approx // BLOCK) * BLOCK + rng.randrange(64, 2048)


# --- text for exports and mail bodies ---------------------------------------------------------

_WORDS = [
    "agreement",
    "party",
    "term",
    "renewal",
    "invoice",
    "budget",
    "quarter",
    "review",
    "draft",
    "final",
    "signed",
    "approval",
    "schedule",
    "delivery",
    "milestone",
    "payment",
    "clause",
    "liability",
    "notice",
    "confidential",
    "scope",
    "pricing",
    "meeting",
    "agenda",
    "action",
    "owner",
    "deadline",
    "update",
    "report",
    "summary",
    "forecast",
    "revenue",
    "cost",
    "team",
    "project",
    "launch",
    "customer",
    "vendor",
    "contract",
    "amendment",
    "exhibit",
    "annex",
    "obligations",
    "warranty",
]


def sentences(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def _repeating_text(size: int, block: bytes) -> Iterator[bytes]:
    if size <= 0:
        return
    full, rest = divmod(size, len(block))
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


def _text_block(key: str, *, csv: bool = False) -> bytes:
    rng = random.Random("text:" + key)
    if csv:
        lines = ["id,name,amount,owner,status"]
        for row in range(400):
            lines.append(
                f"{row + 1},{rng.choice(_WORDS)} {rng.choice(_WORDS)},{rng.randint(1, 99999)},"
                f"{rng.choice(_WORDS)}@example.com,{rng.choice(('open', 'closed', 'draft'))}"
            )
        return ("\r\n".join(lines) + "\r\n").encode()
    paragraphs = [" ".join(sentences(rng, rng.randint(2, 6))) for _ in range(40)]
    return ("\r\n\r\n".join(paragraphs) + "\r\n\r\n").encode()


def text_export(key: str, title: str, size: int, *, csv: bool = False) -> tuple[int, Iterator[bytes]]:
    """Exactly ``size`` bytes of UTF-8 text (a title line, then deterministic paragraphs or rows)."""
    head = b"" if csv else ("\ufeff" + title + "\r\n\r\n").encode("utf-8")
    if len(head) > size:
        head = b""
    body = _repeating_text(size - len(head), _text_block(key, csv=csv))

    def chunks() -> Iterator[bytes]:
        if head:
            yield head
        yield from body

    return size, chunks()


def minimal_pdf(title: str, lines: list[str]) -> bytes:
    """A small valid one-page PDF showing ``title`` and ``lines`` (ASCII only)."""

    def esc(text: str) -> str:
        ascii_text = text.encode("ascii", "replace").decode()
        return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream_lines = ["BT /F1 14 Tf 72 740 Td (" + esc(title)[:90] + ") Tj ET"]
    for number, line in enumerate(lines[:40]):
        stream_lines.append(f"BT /F1 10 Tf 72 {716 - 16 * number} Td (" + esc(line)[:100] + ") Tj ET")
    stream = "\n".join(stream_lines).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
