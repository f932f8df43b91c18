"""Tolerant decoding of RFC 5322 header values as the Gmail API returns them.

Mail in the wild is full of broken encodings; a header we cannot read costs that one field
(``None`` or best-effort text), never the message and never the run.
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime

_FOLD = re.compile(r"\r?\n[ \t]+")
_DECODE_ERRORS = (HeaderParseError, LookupError, UnicodeError, ValueError, binascii.Error, TypeError)


def _decode_chunk(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    for candidate in (charset, "utf-8"):
        if not candidate or candidate == "unknown-8bit":
            continue
        try:
            return chunk.decode(candidate, errors="replace")
        except LookupError:
            continue
    # latin-1 maps every byte, so this cannot fail and keeps ASCII intact.
    return chunk.decode("latin-1")


# C0 controls but tab: an encoded word can carry them (=00), and Postgres text refuses NUL.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _strip_controls(text: str) -> str:
    return _CONTROLS.sub("", text)


def decode_header_value(value: object) -> str | None:
    """Decode RFC 2047 encoded words (B and Q, mixed charsets) into text; never raises.

    Unknown charsets fall back to UTF-8 (then Latin-1) with replacement characters rather than
    failing, and text that decodes to nothing (e.g. a corrupt base64 word) is kept raw so the
    user still sees something.
    """
    if value is None:
        return None
    raw = _FOLD.sub(" ", str(value))
    try:
        decoded = str(make_header(decode_header(raw)))
    except _DECODE_ERRORS:
        try:
            chunks = decode_header(raw)
        except _DECODE_ERRORS:
            return raw.strip()
        # decode_header keeps the whitespace of plain chunks, so a plain join keeps the spacing.
        decoded = "".join(_decode_chunk(chunk, charset) for chunk, charset in chunks)
    decoded = _strip_controls(decoded).strip()
    return decoded if decoded or not raw.strip() else _strip_controls(raw).strip()


def parse_from(value: object) -> tuple[str | None, str | None]:
    """``(address, display name)`` of a From header; either may be ``None``.

    The address is parsed before decoding because a decoded display name may contain the very
    characters (``,`` ``<`` ``"``) that delimit addresses.
    """
    if value is None:
        return None, None
    raw = _FOLD.sub(" ", str(value))
    try:
        pairs = getaddresses([raw])
    except _DECODE_ERRORS:
        pairs = []
    name, address = pairs[0] if pairs else ("", "")
    address = address.strip()
    if "@" not in address:
        # Not an address at all (e.g. "undisclosed-recipients"): keep the text as a name only.
        return None, decode_header_value(raw) or None
    return address, decode_header_value(name) or None


# E-mail did not exist before this; anything earlier in a Date header is corruption.
MIN_PLAUSIBLE_YEAR = 1970


def parse_mail_date(value: object) -> datetime | None:
    """A Date header as an aware UTC datetime, or ``None`` if it cannot be read.

    ``-0000`` ("no zone information") yields a naive datetime, which RFC 5322 says is UTC.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(_FOLD.sub(" ", value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    # A year like 999 parses but is garbage (and has no 4-digit ISO form): treat it as unreadable
    # so the caller falls back to internalDate.
    return parsed if parsed.year >= MIN_PLAUSIBLE_YEAR else None
