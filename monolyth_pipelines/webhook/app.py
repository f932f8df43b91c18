"""The webhook receiver: Drive channel notifications and Gmail Pub/Sub pushes become pending jobs.

``POST /webhooks/drive``: Google's empty POST with X-Goog-Channel-ID / -Token / -Resource-State /
-Resource-ID / -Message-Number. The channel must be one we hold, unexpired, and the token must
hash to the stored hash and the resource id match; otherwise 4xx and nothing is written. A
``sync`` message (sent when a channel starts) creates nothing; neither does a message whose
number is not above the highest seen on its channel (Google retrying, or delivering out of order),
nor one whose changes the account's limits exclude (sync/probe.py asks Google first).

``POST /webhooks/gmail``: a Pub/Sub push, authenticated by the subscription's Google-signed OIDC
token (MONOLYTH_GMAIL_PUSH_SERVICE_ACCOUNT, webhook/oidc.py) and/or a ``?token=`` shared secret
(MONOLYTH_WEBHOOK_SECRET): every one configured must pass. Its data names the mailbox; every
connected account watching it gets a job. An authenticated push is answered 204 whatever it
found, so the answer tells nothing about which mailboxes are watched.

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
from monolyth_pipelines.settings import DriveLimits, FreshnessSettings, GoogleEndpoints
from monolyth_pipelines.store import jobs, push_channels, sync_state
from monolyth_pipelines.store.schema import AccountStatus, Provider, connector_accounts
from monolyth_pipelines.store.timeutil import utcnow
from monolyth_pipelines.sync.probe import drive_notification_needs_run
from monolyth_pipelines.sync.push import DRIVE_PATH, GMAIL_PATH
from monolyth_pipelines.webhook.logs import redact_access_log
from monolyth_pipelines.webhook.oidc import PushVerifier

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
    with engine.begin() as conn:
        return _queue_in(conn, channel)


def _queue_in(conn: sa.Connection, channel: push_channels.Channel) -> str:
    """A pending job for the channel's account (or the open one); 'queued', 'joined' or 'ignored'."""
    now = utcnow()
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


def _gmail_verifier(cfg: FreshnessSettings) -> PushVerifier | None:
    if not cfg.gmail_push_service_account:
        return None
    # Pub/Sub's default audience is the push endpoint URL as configured, secret query included;
    # without a public URL no token can match.
    endpoint = f"{cfg.webhook_url}{GMAIL_PATH}" if cfg.webhook_url else "(MONOLYTH_WEBHOOK_URL unset)"
    audiences = [endpoint] + ([f"{endpoint}?token={cfg.webhook_secret}"] if cfg.webhook_secret else [])
    return PushVerifier(
        audiences=audiences,
        service_account=cfg.gmail_push_service_account,
        certs_url=cfg.gmail_push_certs_url,
    )


def _message_number(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() and len(raw) <= 18 else None


def create_app(engine: sa.Engine | None = None, cfg: FreshnessSettings | None = None) -> Starlette:
    from monolyth_pipelines.store.engine import make_engine

    cfg = cfg or FreshnessSettings.from_env()
    db = engine or make_engine()
    endpoints = GoogleEndpoints.from_env()
    limits = DriveLimits.from_env()
    verifier = _gmail_verifier(cfg)
    redact_access_log()

    async def drive(request: Request) -> Response:
        try:
            await _body(request, cfg.webhook_max_body_bytes)
        except _TooLarge:
            return _refuse(413, "body too large")
        headers = request.headers
        channel_id = headers.get("x-goog-channel-id")
        state = headers.get("x-goog-resource-state")
        number = _message_number(headers.get("x-goog-message-number"))
        if not channel_id or not state or number is None:
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
            await run_in_threadpool(_record_number, db, channel.id, number)
            return Response(status_code=204)
        if not push_channels.is_new_message(channel, number):
            return JSONResponse({"outcome": "replayed"})
        needs_run = await run_in_threadpool(
            drive_notification_needs_run,
            db,
            channel.account_id,
            channel.corpus,
            endpoints=endpoints,
            limits=limits,
        )
        outcome = await run_in_threadpool(_drive_notification, db, channel, number, needs_run)
        return JSONResponse({"outcome": outcome})

    async def gmail(request: Request) -> Response:
        try:
            body = await _body(request, cfg.webhook_max_body_bytes)
        except _TooLarge:
            return _refuse(413, "body too large")
        if not cfg.gmail_push_authenticated:
            return _refuse(403, "Gmail push is not configured")
        token = request.query_params.get("token") or ""
        if cfg.webhook_secret and not hmac.compare_digest(token.encode(), cfg.webhook_secret.encode()):
            return _refuse(403, "bad token")
        if verifier is not None:
            problem = await run_in_threadpool(verifier.verify, request.headers.get("authorization"))
            if problem is not None:
                logger.warning("refused a Gmail push: %s", problem)
                return _refuse(403, "bad token")
        try:
            envelope = json.loads(body)
            data = json.loads(base64.b64decode(envelope["message"]["data"], validate=True))
            email = str(data["emailAddress"])
            history_id = str(data["historyId"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _refuse(400, "not a Gmail Pub/Sub notification")
        await run_in_threadpool(_gmail_notification, db, email, history_id)
        # One answer once authenticated, whatever it found (no oracle of watched mailboxes); and a
        # 2xx, since any other answer makes Pub/Sub redeliver.
        return Response(status_code=204)

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


def _record_number(engine: sa.Engine, channel_id: str, number: int) -> None:
    with engine.begin() as conn:
        push_channels.record_message_number(conn, channel_id, number)


def _drive_notification(
    engine: sa.Engine, channel: push_channels.Channel, number: int, needs_run: bool
) -> str:
    with engine.begin() as conn:
        # In the transaction that queues: a message is acted on once, even when two copies race.
        if not push_channels.record_message_number(conn, channel.id, number):
            return "replayed"
        if not needs_run:
            return "excluded"  # nothing the account's limits keep: no job, and no requeue later
        return _queue_in(conn, channel)


def _gmail_notification(engine: sa.Engine, email: str, history_id: str) -> list[str]:
    """One outcome per connected account watching the mailbox (two owners of one Google user
    share its watch)."""
    outcomes = []
    with engine.connect() as conn:
        watching = push_channels.gmail_channels(conn, email, utcnow())
        cursors = {}
        for channel in watching:
            state = sync_state.get_state(conn, channel.account_id, "gmail")
            cursors[channel.id] = state.cursor if state else None
    for channel in watching:
        cursor = cursors[channel.id]
        if cursor and cursor.isdigit() and history_id.isdigit() and int(history_id) <= int(cursor):
            outcomes.append("already_synced")  # a late or repeated push about history we have
        else:
            outcomes.append(_queue(engine, channel))
    return outcomes


def serve(host: str, port: int, **uvicorn_options: Any) -> None:
    import uvicorn

    # create_app puts the query-redacting filter on uvicorn's access log (webhook/logs.py).
    uvicorn.run(create_app(), host=host, port=port, log_level="info", **uvicorn_options)
