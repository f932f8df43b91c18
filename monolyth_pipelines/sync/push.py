"""Push notification channels: register (Drive ``changes.watch`` per synced corpus, Gmail
``users.watch`` per mailbox), renew before they expire, stop on disconnect.

The receiver (webhook/app.py) turns a notification into a pending job; polling with the change
probe stays as the safety net at a lower cadence (MONOLYTH_PUSH_POLL_HOURS). A Drive channel's
token is a random secret per channel of which only a hash is stored; Gmail's Pub/Sub push is
authenticated by the subscription's OIDC token (and/or a shared secret in its endpoint URL). A
Gmail watch asks for the synced label only (``labelIds`` + ``labelFilterBehavior: include``), so
mail in other labels and read/unread flips push nothing.

Google keeps one Gmail watch per mailbox: two accounts (two owners who connected the same
Google user) share it, each with its own row here. ``users.stop`` ends it for both, so it is
called only when no other connected account still watches that mailbox.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import google_auth_httplib2
import sqlalchemy as sa

from monolyth_pipelines.domain.gmail import find_label
from monolyth_pipelines.domain.probe import shared_drive_id
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.google.clients import HTTP_TIMEOUT_SECONDS, CountingHttp, shared_api
from monolyth_pipelines.google.credentials import credentials_for_grant, token_json_after_refresh
from monolyth_pipelines.google.errors import classify_exception
from monolyth_pipelines.settings import FreshnessSettings, GmailLimits, GoogleEndpoints
from monolyth_pipelines.store import accounts, probe_queries, push_channels
from monolyth_pipelines.store.push_channels import Channel, CorpusToWatch
from monolyth_pipelines.store.schema import Provider
from monolyth_pipelines.store.timeutil import utcnow
from monolyth_pipelines.store.token_crypto import TokenKeyError

logger = logging.getLogger(__name__)

DRIVE_PATH = "/webhooks/drive"
GMAIL_PATH = "/webhooks/gmail"
# Channels registered per provider and maintenance pass; the rest wait for the next pass.
MAX_REGISTRATIONS_PER_PASS = 500


@dataclass
class Maintenance:
    registered: Counter[str] = field(default_factory=Counter)
    stopped: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        errors = f"; errors {dict(self.errors)}" if self.errors else ""
        return f"registered {dict(self.registered) or 0} channel(s), stopped {self.stopped}{errors}"


def _from_ms(raw: Any, default: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(raw) / 1000, UTC)
    except (TypeError, ValueError):
        return default


class _Session:
    """One account's authorised transport over the process-wide API Resources (no build per account)."""

    def __init__(self, token_json: dict[str, Any], endpoints: GoogleEndpoints) -> None:
        self.credentials = credentials_for_grant(token_json, endpoints)
        self.transport = CountingHttp(timeout=HTTP_TIMEOUT_SECONDS)
        self.http = google_auth_httplib2.AuthorizedHttp(self.credentials, http=self.transport)
        self.endpoints = endpoints

    def drive(self) -> Any:
        return shared_api("drive", self.endpoints.drive_api_endpoint)

    def gmail(self) -> Any:
        return shared_api("gmail", self.endpoints.gmail_api_endpoint)

    def close(self) -> None:
        for conn in self.transport.connections.values():
            conn.close()


def _clients(conn: sa.Connection, account_id: uuid.UUID, endpoints: GoogleEndpoints) -> tuple[_Session, dict]:
    token_json = accounts.get_token_json(conn, account_id)
    if not token_json:
        raise ValueError("the account has no tokens")
    return _Session(token_json, endpoints), token_json


def _watch(
    engine: sa.Engine,
    provider: str,
    target: CorpusToWatch,
    cfg: FreshnessSettings,
    endpoints: GoogleEndpoints,
) -> tuple[str | None, tuple[uuid.UUID, dict[str, Any], str | None] | None]:
    """Register one channel; returns (error code or None, refreshed tokens to write back)."""
    now = utcnow()
    try:
        with engine.connect() as conn:
            clients, token_json = _clients(conn, target.account_id, endpoints)
    except TokenKeyError:
        # This account's grant cannot be opened here: count it, the other accounts go on.
        return str(ErrorCode.TOKEN_KEY_UNAVAILABLE), None
    except ValueError:
        return str(ErrorCode.AUTH_REVOKED), None
    channel_id = str(uuid.uuid4())
    try:
        if provider == Provider.GMAIL.value:
            assert cfg.gmail_pubsub_topic, "MONOLYTH_GMAIL_PUBSUB_TOPIC is required for Gmail push"
            users = clients.gmail().users()
            reply = users.watch(userId="me", body=_gmail_watch_body(users, clients, cfg)).execute(
                http=clients.http
            )
            address = users.getProfile(userId="me", fields="emailAddress").execute(http=clients.http)[
                "emailAddress"
            ]
            with engine.begin() as conn:
                push_channels.save_channel(
                    conn,
                    channel_id=channel_id,
                    account_id=target.account_id,
                    provider=provider,
                    corpus=target.corpus,
                    token=None,
                    resource_id=address.lower(),
                    expires_at=_from_ms(reply.get("expiration"), now + timedelta(days=7)),
                    now=now,
                )
        else:
            _watch_drive(engine, clients, target, channel_id, cfg, now)
        error = None
    except Exception as exc:
        error = str(classify_exception(exc).code)
    finally:
        clients.close()
    refreshed = token_json_after_refresh(token_json, clients.credentials)
    return error, (target.account_id, refreshed, token_json.get("refresh_token")) if refreshed else None


def _gmail_watch_body(users: Any, clients: _Session, cfg: FreshnessSettings) -> dict[str, Any]:
    """Only the synced label's changes: no push for other mail, nor for read/unread flips."""
    wanted = GmailLimits.from_env().label
    labels = users.labels().list(userId="me", fields="labels(id,name)").execute(http=clients.http)
    label = find_label(labels.get("labels") or [], wanted)
    if label is None:
        raise SyncError(ErrorCode.LABEL_NOT_FOUND, "the Gmail label to watch does not exist in this mailbox")
    return {
        "topicName": cfg.gmail_pubsub_topic,
        "labelIds": [str(label["id"])],
        "labelFilterBehavior": "include",
    }


def _watch_drive(
    engine: sa.Engine,
    clients: _Session,
    target: CorpusToWatch,
    channel_id: str,
    cfg: FreshnessSettings,
    now: datetime,
) -> None:
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=cfg.channel_hours)
    # Stored before the watch call: Google sends the channel's "sync" message at once, and the
    # receiver must already know the channel (by its token) to accept it.
    with engine.begin() as conn:
        push_channels.save_channel(
            conn,
            channel_id=channel_id,
            account_id=target.account_id,
            provider=Provider.GOOGLE_DRIVE.value,
            corpus=target.corpus,
            token=token,
            resource_id="",
            expires_at=expires,
            now=now,
        )
    drive_id = shared_drive_id(target.corpus)
    args: dict[str, Any] = {"supportsAllDrives": True}
    args |= {"driveId": drive_id, "includeItemsFromAllDrives": True} if drive_id else {}
    try:
        reply = (
            clients.drive()
            .changes()
            .watch(
                pageToken=target.cursor,
                body={
                    "id": channel_id,
                    "type": "web_hook",
                    "address": f"{cfg.webhook_url}{DRIVE_PATH}",
                    "token": token,
                    "expiration": int(expires.timestamp() * 1000),
                },
                **args,
            )
            .execute(http=clients.http)
        )
    except Exception:
        with engine.begin() as conn:
            push_channels.delete_channels(conn, [channel_id])
        raise
    with engine.begin() as conn:
        push_channels.confirm_channel(
            conn,
            channel_id,
            resource_id=reply["resourceId"],
            expires_at=_from_ms(reply.get("expiration"), expires),
        )


def _stop_at_google(conn: sa.Connection, channel: Channel, endpoints: GoogleEndpoints) -> None:
    if channel.provider == Provider.GMAIL.value and push_channels.mailbox_watched_by_others(
        conn, channel, utcnow()
    ):
        return  # the mailbox's one watch serves another connected account too
    clients, _ = _clients(conn, channel.account_id, endpoints)
    try:
        if channel.provider == Provider.GMAIL.value:
            clients.gmail().users().stop(userId="me").execute(http=clients.http)
        else:
            clients.drive().channels().stop(
                body={"id": channel.id, "resourceId": channel.resource_id}
            ).execute(http=clients.http)
    finally:
        clients.close()


def stop_channels(
    account_id: uuid.UUID, *, engine: sa.Engine | None = None, endpoints: GoogleEndpoints | None = None
) -> int:
    """Stop every channel of an account at Google and forget it; returns how many were held.

    Best effort at Google (a channel it no longer knows, or revoked tokens, only mean it expires
    on its own and its notifications find no channel here); the rows always go.
    """
    return stop_channels_of([account_id], engine=engine, endpoints=endpoints)


def stop_channels_of(
    account_ids: Sequence[uuid.UUID],
    *,
    engine: sa.Engine | None = None,
    endpoints: GoogleEndpoints | None = None,
) -> int:
    """``stop_channels`` for many accounts (a domain's departed users): one read of their
    channels and one delete; Google is still asked once per channel, as it has no bulk stop."""
    from monolyth_pipelines.store.engine import make_engine

    if not account_ids:
        return 0
    engine = engine or make_engine()
    endpoints = endpoints or GoogleEndpoints.from_env()
    with engine.connect() as conn:
        held = push_channels.channels_of_accounts(conn, account_ids)
        for channel in held:
            try:
                _stop_at_google(conn, channel, endpoints)
            except TokenKeyError:
                logger.warning("could not stop channel %s: %s", channel.id, ErrorCode.TOKEN_KEY_UNAVAILABLE)
            except Exception as exc:
                logger.warning("could not stop channel %s: %s", channel.id, classify_exception(exc).code)
    if held:
        with engine.begin() as conn:
            push_channels.delete_channels(conn, [c.id for c in held])
    return len(held)


def maintain_channels(
    engine: sa.Engine,
    providers: Sequence[str],
    *,
    cfg: FreshnessSettings | None = None,
    endpoints: GoogleEndpoints | None = None,
    now: datetime | None = None,
) -> Maintenance:
    """One pass: register channels for synced corpora without one (or whose channel expires within
    MONOLYTH_PUSH_RENEW_BEFORE_MINUTES), then stop the replaced ones and those of disconnected
    accounts."""
    cfg = cfg or FreshnessSettings.from_env()
    endpoints = endpoints or GoogleEndpoints.from_env()
    now = now or utcnow()
    done = Maintenance()
    if not cfg.push_enabled:
        return done
    renew_before = now + timedelta(minutes=cfg.renew_before_minutes)
    refreshed: list[tuple[uuid.UUID, dict[str, Any], str | None]] = []
    for provider in providers:
        if provider == Provider.GMAIL.value and not (cfg.gmail_pubsub_topic and cfg.gmail_push_authenticated):
            continue  # Gmail push needs a topic and a way to authenticate pushes
        with engine.connect() as conn:
            targets = push_channels.corpora_needing_channels(
                conn, provider=provider, renew_before=renew_before, limit=MAX_REGISTRATIONS_PER_PASS
            )
        with ThreadPoolExecutor(max_workers=max(1, cfg.probe_concurrency)) as pool:
            for error, tokens in pool.map(
                lambda t, p=provider: _watch(engine, p, t, cfg, endpoints), targets
            ):
                if error:
                    done.errors[error] += 1
                else:
                    done.registered[provider] += 1
                if tokens:
                    refreshed.append(tokens)
    with engine.begin() as conn:
        probe_queries.save_refreshed_tokens(conn, refreshed)
        old = push_channels.replaced_channels(
            conn, renew_before=renew_before, limit=MAX_REGISTRATIONS_PER_PASS
        )
    with engine.connect() as conn:
        for channel in old:
            # A renewed Gmail watch is the same watch at Google: stopping it would end the new one.
            connected = accounts.get_account(conn, channel.account_id)
            if channel.provider == Provider.GMAIL.value and connected and connected.status == "connected":
                continue
            try:
                _stop_at_google(conn, channel, endpoints)
            except TokenKeyError:
                done.errors[str(ErrorCode.TOKEN_KEY_UNAVAILABLE)] += 1
            except Exception as exc:
                code = classify_exception(exc).code
                if code != ErrorCode.NOT_FOUND:
                    done.errors[str(code)] += 1
    with engine.begin() as conn:
        push_channels.delete_channels(conn, [c.id for c in old])
    done.stopped = len(old)
    return done


def requeue_notified(engine: sa.Engine, kinds_by_provider: dict[str, str]) -> int:
    """A pending job for each account notified while its last sync was already running."""
    from monolyth_pipelines.store import automation_queries

    queued = 0
    with engine.begin() as conn:
        for provider, kind in kinds_by_provider.items():
            ids = push_channels.notified_during_last_run(conn, provider=provider, kind=kind)
            if ids:
                queued += len(
                    automation_queries.request_syncs(
                        conn,
                        provider=provider,
                        kind=kind,
                        requested_by="push",
                        account_ids=ids,
                        last_job_before=utcnow(),
                    )
                )
    return queued
