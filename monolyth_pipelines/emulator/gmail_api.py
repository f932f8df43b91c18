"""Gmail v1 methods over the mailbox model: parameters, errors and response shapes as Google has them."""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from monolyth_pipelines.emulator.calls import ApiResponse, CallContext, Route, bytes_response, json_response
from monolyth_pipelines.emulator.errors import ApiError, invalid_parameter, not_found, required_parameter
from monolyth_pipelines.emulator.gmail import FORMATS, HIDDEN_LABELS, HISTORY_TYPES, Mailbox, Message, Thread
from monolyth_pipelines.emulator.gmail_query import compile_gmail_query, mentions_hidden_labels
from monolyth_pipelines.emulator.mime import attachment_content, b64url, parse_attachment_id
from monolyth_pipelines.emulator.oauth import GMAIL_METADATA_SCOPE, GMAIL_SCOPES, require_scope
from monolyth_pipelines.emulator.paging import View, cursor, fingerprint, resume, scan

Ctx = CallContext[Mailbox]
T = TypeVar("T")


def _metadata_only(ctx: Ctx) -> bool:
    return not (ctx.caller.scopes & GMAIL_SCOPES) - {GMAIL_METADATA_SCOPE}


def _enter(ctx: Ctx) -> Mailbox:
    """Scope and userId checks every Gmail method starts with."""
    require_scope(ctx.caller, GMAIL_SCOPES)
    user_id = ctx.request.path_params.get("userId", "me")
    if user_id not in ("me", ctx.caller.email):
        raise ApiError(403, f"Delegation denied for {ctx.caller.email}", "forbidden")
    return ctx.store


def _format(ctx: Ctx, allowed: tuple[str, ...]) -> str:
    fmt = ctx.request.param("format") or "full"
    if fmt not in allowed:
        raise invalid_parameter("format", f"Invalid value at 'format' ({fmt})", reason="invalidArgument")
    if fmt in ("full", "raw") and _metadata_only(ctx):
        raise ApiError(403, f"Metadata scope doesn't allow format {fmt.upper()}", "forbidden")
    return fmt


def _q(ctx: Ctx) -> str | None:
    q = ctx.request.param("q")
    if q and _metadata_only(ctx):
        raise ApiError(403, "Metadata scope does not support 'q' parameter", "forbidden")
    return q


def _label_filter(ctx: Ctx, box: Mailbox) -> list[str]:
    label_ids = ctx.request.params("labelIds")
    for label_id in label_ids:
        if label_id not in box.labels:
            raise invalid_parameter("labelIds", f"Invalid label: {label_id}", reason="invalidArgument")
    return label_ids


def get_profile(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    return json_response(box.profile(), ctx.request.field_mask("gmail.v1", "Profile"))


def labels_list(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    return json_response(
        {"labels": box.label_list()}, ctx.request.field_mask("gmail.v1", "ListLabelsResponse")
    )


def labels_get(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    label = box.labels.get(ctx.request.path_params["id"])
    if label is None:
        raise not_found()
    live = [m for m in box.messages.values() if not m.deleted and label.id in m.labels]
    unread = [m for m in live if "UNREAD" in m.labels]
    body = label.json()
    body.update(
        {
            "messagesTotal": len(live),
            "messagesUnread": len(unread),
            "threadsTotal": len({m.thread_id for m in live}),
            "threadsUnread": len({m.thread_id for m in unread}),
        }
    )
    return json_response(body, ctx.request.field_mask("gmail.v1", "Label"))


def _max_results(ctx: Ctx) -> int:
    return ctx.request.int_param("maxResults", 100, minimum=1, maximum=500, strict=ctx.strict)


@dataclass(frozen=True)
class _ListFilter:
    """What threads.list and messages.list share: labelIds, q, includeSpamTrash, maxResults."""

    wanted: frozenset[str]
    q: str | None
    include_hidden: bool
    limit: int
    predicate: Callable[[Message], bool] | None

    def visible(self, m: Message) -> bool:
        return self.include_hidden or not HIDDEN_LABELS.intersection(m.labels)

    @property
    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted(self.wanted)), self.q, self.include_hidden)


def _list_filter(ctx: Ctx, box: Mailbox) -> _ListFilter:
    wanted = frozenset(_label_filter(ctx, box))  # checked before q, as before: same error first
    q = _q(ctx)
    return _ListFilter(
        wanted=wanted,
        q=q,
        include_hidden=ctx.request.bool_param("includeSpamTrash") or mentions_hidden_labels(q),
        limit=_max_results(ctx),
        predicate=compile_gmail_query(box, q),
    )


def threads_list(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    mask = ctx.request.field_mask("gmail.v1", "ListThreadsResponse")
    f = _list_filter(ctx, box)

    def keep(thread: Thread) -> bool:
        live = [m for m in thread.live() if f.visible(m)]
        if not live or not f.wanted <= {label for m in live for label in m.labels}:
            return False
        return f.predicate is None or any(f.predicate(m) for m in live)

    body = _page(ctx, box.thread_view(), keep, f.limit, ("threads", *f.key))
    found: list[Thread] = body.pop("_found")
    if found:
        body["threads"] = [
            {"id": t.id, "snippet": t.live()[-1].snippet, "historyId": str(t.history_id)} for t in found
        ]
    return json_response(_order(body, "threads"), mask)


def messages_list(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    mask = ctx.request.field_mask("gmail.v1", "ListMessagesResponse")
    f = _list_filter(ctx, box)

    def keep(m: Message) -> bool:
        return f.visible(m) and f.wanted <= set(m.labels) and (f.predicate is None or f.predicate(m))

    body = _page(ctx, box.message_view(), keep, f.limit, ("messages", *f.key))
    found: list[Message] = body.pop("_found")
    if found:
        body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in found]
    return json_response(_order(body, "messages"), mask)


def _page(
    ctx: Ctx, view: View[T], keep: Callable[[T], bool], limit: int, key_parts: tuple[Any, ...]
) -> dict[str, Any]:
    """One page of a newest-first list; the size estimate is taken on page 1 and carried along."""
    query_key = fingerprint(*key_parts)
    token = ctx.request.param("pageToken")
    if token:
        decoded = ctx.codec.decode(token)
        start = resume(view, decoded, query_key)
        estimate = int(decoded.get("e", 0))
    else:
        start = 0
        estimate = sum(1 for item in view.items if keep(item))
    found, next_pos = scan(view, start, limit, keep)
    body: dict[str, Any] = {"_found": found, "resultSizeEstimate": estimate}
    if next_pos is not None:
        payload = cursor(view, next_pos, query_key)
        payload["e"] = estimate
        body["nextPageToken"] = ctx.codec.encode(payload)
    return body


def _order(body: dict[str, Any], items_key: str) -> dict[str, Any]:
    ordered = {key: body[key] for key in (items_key, "nextPageToken") if key in body}
    ordered["resultSizeEstimate"] = body["resultSizeEstimate"]
    return ordered


def _metadata_headers(ctx: Ctx) -> list[str]:
    return ctx.request.params("metadataHeaders")


def threads_get(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    mask = ctx.request.field_mask("gmail.v1", "Thread")
    fmt = _format(ctx, ("full", "metadata", "minimal"))
    thread = box.threads.get(ctx.request.path_params["id"])
    if thread is None or not thread.live():
        raise not_found()
    return json_response(box.thread_json(thread, fmt, _metadata_headers(ctx)), mask)


def messages_get(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    mask = ctx.request.field_mask("gmail.v1", "Message")
    fmt = _format(ctx, FORMATS)
    message = box.messages.get(ctx.request.path_params["id"])
    if message is None or message.deleted:
        raise not_found()
    return json_response(box.message_json(message, fmt, _metadata_headers(ctx)), mask)


def attachments_get(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    if _metadata_only(ctx):
        raise ApiError(403, "Metadata scope doesn't allow attachment downloads", "forbidden")
    mask = ctx.request.field_mask("gmail.v1", "MessagePartBody")
    message = box.messages.get(ctx.request.path_params["messageId"])
    if message is None or message.deleted:
        raise not_found()
    parsed = parse_attachment_id(ctx.request.path_params["id"])
    if parsed is None or parsed[0] != message.id:
        raise invalid_parameter("id", "Invalid attachment token", reason="invalidArgument")
    part = next((p for p in box.tree(message).walk() if p.part_id == parsed[1]), None)
    if part is None or part.attachment is None:
        raise invalid_parameter("id", "Invalid attachment token", reason="invalidArgument")
    data = attachment_content(message.id, part).read()
    return json_response({"size": len(data), "data": b64url(data)}, mask)


def history_list(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    req = ctx.request
    mask = req.field_mask("gmail.v1", "ListHistoryResponse")
    raw_start = req.param("startHistoryId")
    if not raw_start:
        raise required_parameter("startHistoryId")
    if not raw_start.isdigit():
        raise invalid_parameter("startHistoryId", "Invalid startHistoryId", reason="invalidArgument")
    start = int(raw_start)
    types = req.params("historyTypes")
    for kind in types:
        if kind not in HISTORY_TYPES:
            raise invalid_parameter(
                "historyTypes", f"Invalid value at 'history_types' ({kind})", reason="invalidArgument"
            )
    label_id = req.param("labelId")
    limit = _max_results(ctx)
    query_key = fingerprint("history", start, tuple(sorted(types)), label_id)
    token = req.param("pageToken")
    after = start
    if token:
        decoded = ctx.codec.decode(token)
        if decoded.get("q") != query_key or not isinstance(decoded.get("h"), int):
            raise invalid_parameter("pageToken")
        after = decoded["h"]
    # Records after ``after`` are complete only if nothing newer than it was pruned.
    if after < box.history_floor:
        raise not_found()

    def keep(record: Any) -> bool:
        return (not types or record.kind in types) and (label_id is None or record.touches_label(label_id))

    history = box.history
    view: View[Any] = View(history, lambda r: r.id, box.generation)
    found, next_pos = scan(view, bisect.bisect_right(history, after, key=lambda r: r.id), limit, keep)
    body: dict[str, Any] = {}
    if found:
        body["history"] = [record.json() for record in found]
    if next_pos is not None:
        body["nextPageToken"] = ctx.codec.encode({"h": history[next_pos - 1].id, "q": query_key})
    body["historyId"] = str(box.history_id)
    return json_response(body, mask)


_USER = r"/gmail/v1/users/(?P<userId>[^/]+)"


def watch(ctx: Ctx) -> ApiResponse:
    """users.watch: publish this mailbox's changes to a Pub/Sub topic (emulator/push.py sends)."""
    box = _enter(ctx)
    try:
        body = json.loads(ctx.request.body or b"{}")
    except ValueError:
        raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received.", "parseError")
    return json_response(box.push.gmail_watch(box.email, body, box.history_id))


def stop(ctx: Ctx) -> ApiResponse:
    box = _enter(ctx)
    box.push.gmail_stop(box.email)
    return bytes_response(b"", "text/html", status=204)


ROUTES: tuple[Route, ...] = (
    Route("POST", rf"{_USER}/watch", "gmail.users.watch", watch),
    Route("POST", rf"{_USER}/stop", "gmail.users.stop", stop),
    Route("GET", rf"{_USER}/profile", "gmail.users.getProfile", get_profile),
    Route("GET", rf"{_USER}/labels", "gmail.users.labels.list", labels_list),
    Route("GET", rf"{_USER}/labels/(?P<id>[^/]+)", "gmail.users.labels.get", labels_get),
    Route("GET", rf"{_USER}/threads", "gmail.users.threads.list", threads_list),
    Route("GET", rf"{_USER}/threads/(?P<id>[^/]+)", "gmail.users.threads.get", threads_get),
    Route("GET", rf"{_USER}/messages", "gmail.users.messages.list", messages_list),
    Route("GET", rf"{_USER}/messages/(?P<id>[^/]+)", "gmail.users.messages.get", messages_get),
    Route(
        "GET",
        rf"{_USER}/messages/(?P<messageId>[^/]+)/attachments/(?P<id>[^/]+)",
        "gmail.users.messages.attachments.get",
        attachments_get,
    ),
    Route("GET", rf"{_USER}/history", "gmail.users.history.list", history_list),
)
