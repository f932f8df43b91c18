"""One API call as the handlers see it, whether it came alone over HTTP or inside a batch.

Handlers never touch sockets: they read an ``ApiRequest`` and return an ``ApiResponse``, which the
server writes to the wire or the batch module wraps into a multipart part.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from monolyth_pipelines.emulator.errors import ApiError, invalid_parameter
from monolyth_pipelines.emulator.fields import FieldMask, FieldMaskError
from monolyth_pipelines.emulator.oauth import Caller
from monolyth_pipelines.emulator.paging import TokenCodec
from monolyth_pipelines.emulator.schemas import schemas

JSON_TYPE = "application/json; charset=UTF-8"
S = TypeVar("S")


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""
    # Filled by the router: the path parameters of the matched route.
    path_params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_target(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> ApiRequest:
        """Build from a request line target (``/path?query``), folding in a method override.

        google-api-python-client turns a GET whose URI is too long into a POST carrying the query
        as a form body and ``X-HTTP-Method-Override: GET``; Google treats that as the GET.
        """
        url = urlsplit(target)
        query = parse_qs(url.query, keep_blank_values=True)
        override = header_value(headers, "x-http-method-override")
        if method == "POST" and override:
            method = override.upper()
            content_type = header_value(headers, "content-type") or ""
            if content_type.startswith("application/x-www-form-urlencoded") and body:
                for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                    query.setdefault(key, []).extend(values)
                body = b""
        return cls(method=method, path=url.path, query=query, headers=headers, body=body)

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return list(self.query.get(name, ()))

    def bool_param(self, name: str, default: bool = False) -> bool:
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        lowered = raw.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise invalid_parameter(
            name,
            f"Invalid value '{raw}'. Values must match the following regular expression: '(?i)true|false'",
        )

    def int_param(self, name: str, default: int, *, minimum: int, maximum: int, strict: bool) -> int:
        """An integer parameter; above ``maximum`` it is coerced as Google documents (400 when strict)."""
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid_parameter(name, f"Invalid value '{raw}'. Values must be integers.") from None
        if value < minimum:
            raise invalid_parameter(
                name, f"Invalid value '{value}'. Values must be within the range: [{minimum}, {maximum}]"
            )
        if value > maximum:
            if strict:
                raise invalid_parameter(
                    name, f"Invalid value '{value}'. Values must be within the range: [{minimum}, {maximum}]"
                )
            return maximum
        return value

    def field_mask(self, api: str, root: str) -> FieldMask | None:
        """The ``fields`` selector, checked against ``root`` in the API's discovery schemas."""
        raw = self.param("fields")
        if raw is None or raw == "":
            return None
        try:
            mask = FieldMask.parse(raw)
            mask.validate(schemas(api), root)
        except FieldMaskError as exc:
            raise ApiError(400, str(exc), "invalidParameter", location="fields") from None
        return mask


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


@dataclass
class ApiResponse:
    status: int
    content_type: str
    body: bytes | Iterable[bytes]
    length: int
    headers: list[tuple[str, str]] = field(default_factory=list)

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.body, bytes):
            yield self.body
        else:
            yield from self.body

    def read_all(self) -> bytes:
        return b"".join(self.chunks())


def json_response(value: Any, mask: FieldMask | None = None, status: int = 200) -> ApiResponse:
    if mask is not None:
        value = mask.apply(value)
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return ApiResponse(status, JSON_TYPE, data, len(data))


def rewritten(response: ApiResponse, rewrites: Iterable[Callable[[Any], Any]]) -> ApiResponse:
    """A JSON answer passed through fault rewrites (``Faults.rewrite``). Escaped ASCII keeps lone
    surrogates a rewrite put in sendable, as Google's own ``\ud800`` escapes would be."""
    value: Any = json.loads(response.read_all())
    for rewrite in rewrites:
        value = rewrite(value)
        if isinstance(value, bytes):
            return bytes_response(value, JSON_TYPE)
    data = json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return ApiResponse(response.status, JSON_TYPE, data, len(data), response.headers)


def error_response(error: ApiError) -> ApiResponse:
    data = error.to_bytes()
    return ApiResponse(error.code, JSON_TYPE, data, len(data))


def bytes_response(data: bytes, content_type: str, status: int = 200) -> ApiResponse:
    return ApiResponse(status, content_type, data, len(data))


@dataclass
class CallContext(Generic[S]):
    """Everything a handler needs: the call, who makes it, and the account's Drive or mailbox."""

    request: ApiRequest
    caller: Caller
    store: S
    codec: TokenCodec
    strict: bool  # refuse over-maximum page sizes instead of coercing them


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    endpoint: str
    handler: Callable[[CallContext[Any]], ApiResponse]
    media_endpoint: str | None = None  # the name used for stats, faults and quotas when alt=media

    @property
    def api(self) -> str:
        return self.endpoint.split(".", 1)[0]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = _compiled(self.pattern).fullmatch(path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}

    def endpoint_for(self, request: ApiRequest) -> str:
        if self.media_endpoint and request.param("alt") == "media":
            return self.media_endpoint
        return self.endpoint


_patterns: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _patterns.get(pattern)
    if compiled is None:
        compiled = _patterns[pattern] = re.compile(pattern)
    return compiled
