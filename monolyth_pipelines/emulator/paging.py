"""Opaque page tokens and resumable scans over ordered views.

A list page scans an ordered view from a position and keeps what the filter accepts. The next
page token remembers where the scan stopped (index, the key of the item there, and the view's
generation), so continuing costs nothing while the view is unchanged, and still resumes at the
right item after a mutation reorders the view. A full listing is therefore O(N), not O(N²).
Tokens are signed so garbage or a token of another query is refused with 400, as Google does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from monolyth_pipelines.emulator.errors import ApiError, invalid_parameter

T = TypeVar("T")


class TokenCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, payload: dict[str, Any]) -> str:
        data = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        sig = hmac.new(self._secret, data, hashlib.sha256).digest()[:9]
        return base64.urlsafe_b64encode(sig + data).decode().rstrip("=")

    def decode(self, token: str, *, parameter: str = "pageToken") -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            sig, data = raw[:9], raw[9:]
            if not hmac.compare_digest(sig, hmac.new(self._secret, data, hashlib.sha256).digest()[:9]):
                raise ValueError("bad signature")
            payload = json.loads(data)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            raise invalid_parameter(parameter) from None
        return payload


def fingerprint(*parts: object) -> str:
    """A short digest of what defines a listing, so a token only continues its own query."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


class View(Generic[T]):
    """An ordered, immutable snapshot of items, tagged with the generation it was built at."""

    __slots__ = ("_index", "generation", "items", "key")

    def __init__(self, items: Sequence[T], key: Callable[[T], Hashable], generation: int) -> None:
        self.items = items
        self.key = key
        self.generation = generation
        self._index: dict[Hashable, int] | None = None

    def position_of(self, item_key: Hashable) -> int | None:
        if self._index is None:
            self._index = {self.key(item): pos for pos, item in enumerate(self.items)}
        return self._index.get(item_key)


def scan(view: View[T], start: int, limit: int, keep: Callable[[T], bool]) -> tuple[list[T], int | None]:
    """Up to ``limit`` kept items from ``start``, and the position of the next kept item, if any.

    Looking ahead for the next match means a listing never ends with an empty page, the way
    Google omits ``nextPageToken`` once nothing is left.
    """
    items = view.items
    size = len(items)
    found: list[T] = []
    pos = start
    while pos < size and len(found) < limit:
        item = items[pos]
        pos += 1
        if keep(item):
            found.append(item)
    while pos < size:
        if keep(items[pos]):
            return found, pos
        pos += 1
    return found, None


def cursor(view: View[T], position: int, query: str) -> dict[str, Any]:
    return {"p": position, "k": view.key(view.items[position]), "g": view.generation, "q": query}


def resume(view: View[T], token: dict[str, Any], query: str) -> int:
    """The scan position a decoded token continues from in ``view``."""
    if token.get("q") != query:
        raise ApiError(400, "Invalid Value", "invalid", location="pageToken")
    position = token.get("p")
    if not isinstance(position, int) or position < 0:
        raise invalid_parameter("pageToken")
    if token.get("g") == view.generation and position < len(view.items):
        return position
    moved = view.position_of(_hashable(token.get("k")))
    return moved if moved is not None else min(position, len(view.items))


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value
