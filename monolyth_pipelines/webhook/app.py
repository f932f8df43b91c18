"""The webhook receiver: Drive channel notifications and Gmail Pub/Sub pushes become pending jobs.

``POST /webhooks/drive``: Google's empty POST with X-Goog-Channel-ID / -Token / -Resource-State /
-Resource-ID. The channel must be one we hold, unexpired, and the token must hash to the stored
hash and the resource id match; otherwise 4xx and nothing is written. A ``sync`` message (sent
when a channel starts) creates nothing. ``POST /webhooks/gmail?token=SECRET``: a Pub/Sub push
whose endpoint URL carries MONOLYTH_WEBHOOK_SECRET; its data names the mailbox and its historyId.
A notification becomes a pending job through ``jobs.request_sync``, which joins any open job, so
a burst of notifications (or Google's retries) gives one job and one run. Bodies over
MONOLYTH_WEBHOOK_MAX_BODY_BYTES are refused with 413 before they are read whole.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from monolyth_pipelines import providers
from monolyth_pipelines.settings import FreshnessSettings
from monolyth_pipelines.store import jobs, push_channels, sync_state
from monolyth_pipelines.store.schema import AccountStatus, Provider, connector_accounts
from monolyth_pipelines.store.timeutil import utcnow
from monolyth_pipelines.sync.push import DRIVE_PATH, GMAIL_PATH

logger = logging.getLogger(__name__)

TRIGGER_PUSH = "push"


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _TooLarge
    return bytes(received)


def _refuse(status: int, why: str) -> Response:
    return PlainTextResponse(why, status_code=status)


def _queue(engine: sa.Engine, channel: push_channels.Channel) -> str:
    """A pending job for the channel's account (or the open one); 'queued', 'joined' or 'ignored'."""
    now = utcnow()
    with engine.begin() as conn:
        status = conn.execute(
            sa.select(connector_accounts.c.status).where(connector_accounts.c.id == channel.account_id)
        ).scalar_one_or_none()
        push_channels.touch(conn, channel.id, now)
        if status != AccountStatus.CONNECTED.value:
            return "ignored"
        kind = providers.get(channel.provider).kind
        job_id, created = jobs.request_sync(conn, channel.account_id, kind)
        if created:
            jobs.update_meta(conn, job_id, {"requested_by": TRIGGER_PUSH})
    return "queued" if created else "joined"


def create_app(engine: sa.Engine | None = None, cfg: FreshnessSettings | None = None) -> Starlette:
    from monolyth_pipelines.store.engine import make_engine

    cfg = cfg or FreshnessSettings.from_env()
    db = engine or make_engine()

    async def drive(request: Request) -> Response:
        try:
            await _body(request, cfg.webhook_max_body_bytes)
        except _TooLarge:
            return _refuse(413, "body too large")
        headers = request.headers
        channel_id = headers.get("x-goog-channel-id")
        state = headers.get("x-goog-resource-state")
        if not channel_id or not state:
            return _refuse(400, "not a Drive notification")
        channel = await run_in_threadpool(_get_channel, db, channel_id)
        # One answer for unknown, forged and mismatched: no hint which part was wrong.
        if (
            channel is None
            or channel.provider != Provider.GOOGLE_DRIVE.value
            or not push_channels.token_matches(channel, headers.get("x-goog-channel-token"))
            # Empty only between storing the channel and Google's reply (its "sync" message).
            or (channel.resource_id and channel.resource_id != headers.get("x-goog-resource-id"))
        ):
            return _refuse(403, "unknown channel or bad token")
        if channel.expires_at <= utcnow():
            return _refuse(410, "channel expired")
        if state == "sync":
            return Response(status_code=204)
        outcome = await run_in_threadpool(_queue, db, channel)
        return JSONResponse({"outcome": outcome})

    async def gmail(request: Request) -> Response:
        try:
            body = await _body(request, cfg.webhook_max_body_bytes)
        except _TooLarge:
            return _refuse(413, "body too large")
        token = request.query_params.get("token") or ""
        if not cfg.webhook_secret or not hmac.compare_digest(token.encode(), cfg.webhook_secret.encode()):
            return _refuse(403, "bad token")
        try:
            envelope = json.loads(body)
            data = json.loads(base64.b64decode(envelope["message"]["data"], validate=True))
            email = str(data["emailAddress"])
            history_id = str(data["historyId"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _refuse(400, "not a Gmail Pub/Sub notification")
        outcome = await run_in_threadpool(_gmail_notification, db, email, history_id)
        # Always acknowledged once authenticated: a non-2xx answer makes Pub/Sub redeliver.
        return JSONResponse({"outcome": outcome})

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route(DRIVE_PATH, drive, methods=["POST"]),
            Route(GMAIL_PATH, gmail, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def _get_channel(engine: sa.Engine, channel_id: str) -> push_channels.Channel | None:
    with engine.connect() as conn:
        return push_channels.get_channel(conn, channel_id)


def _gmail_notification(engine: sa.Engine, email: str, history_id: str) -> str:
    with engine.connect() as conn:
        channel = push_channels.gmail_channel(conn, email, utcnow())
        if channel is None:
            return "no_watch"
        state = sync_state.get_state(conn, channel.account_id, "gmail")
    cursor = state.cursor if state else None
    if cursor and cursor.isdigit() and history_id.isdigit() and int(history_id) <= int(cursor):
        return "already_synced"  # a late or repeated push about history we have
    return _queue(engine, channel)


def serve(host: str, port: int, **uvicorn_options: Any) -> None:
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level="info", **uvicorn_options)
