"""Push notifications as Google sends them: Drive ``changes.watch`` channels and Gmail ``users.watch``
over Pub/Sub push.

Drive: ``changes.watch`` registers a web_hook channel (id, token, address, expiration); on every
change the account's feed takes, the address gets an empty POST with the real headers
(X-Goog-Channel-ID, -Token, -Expiration, X-Goog-Resource-State, -ID, -URI, X-Goog-Message-Number).
A new channel first gets a ``sync`` message. ``channels.stop`` ends it; past its expiration it
sends nothing. X-Goog-Message-Number grows with every message of a channel, by gaps (Google's
numbers are not sequential); ``resend`` sends an earlier message again, as Google's retries and
reordering do. Gmail: ``users.watch`` publishes each mailbox change to a Pub/Sub topic, only the
changes of its ``labelIds`` with ``labelFilterBehavior: include`` (all but them with ``exclude``,
every change without labels); a push subscription (set up through the admin API, as an operator
would in the Cloud console) POSTs ``{"message": {"data": base64({"emailAddress", "historyId"}),
"messageId", "publishTime"}, "subscription"}`` to its endpoint, with ``Authorization: Bearer``
and a Google-signed OIDC token when the subscription names a service account (emulator/oidc.py).
Notifications go out from one sender thread, so a mutation never waits on the receiver; a
notification already queued for a channel is not queued twice.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import random
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from monolyth_pipelines.emulator.errors import ApiError, not_found
from monolyth_pipelines.emulator.oidc import OidcIssuer

logger = logging.getLogger(__name__)

# changes.watch: Google's default channel lifetime is one hour, the most it grants one week.
DRIVE_DEFAULT_TTL_MS = 3_600_000
DRIVE_MAX_TTL_MS = 604_800_000
GMAIL_WATCH_TTL_MS = 604_800_000  # a Gmail watch lasts seven days
SEND_TIMEOUT_SECONDS = 5.0


@dataclass
class DriveChannel:
    id: str
    email: str
    token: str | None
    address: str
    resource_id: str
    expiration_ms: int
    drive_id: str | None
    messages: int = 0  # the last X-Goog-Message-Number sent


@dataclass
class GmailWatch:
    email: str
    topic: str
    expiration_ms: int
    label_ids: tuple[str, ...] = ()
    behavior: str = "include"  # with label_ids: push only their changes ("exclude": all but them)

    def wants(self, kind: str, labels: set[str], changed: set[str]) -> bool:
        """Does a history record concern the watched labels? New and deleted mail: the message's
        labels; a relabel: the labels added or removed (a read/unread flip touches UNREAD only)."""
        if not self.label_ids:
            return True
        touched = labels if kind in ("messageAdded", "messageDeleted") else changed
        hit = bool(touched.intersection(self.label_ids))
        return hit if self.behavior == "include" else not hit


@dataclass
class PushSubscription:
    """A Pub/Sub push subscription: its endpoint and, with ``service_account``, OIDC tokens."""

    endpoint: str
    service_account: str | None = None
    audience: str | None = None  # unset: the endpoint URL, as Pub/Sub does


@dataclass
class Delivery:
    """One notification the emulator sent, for tests and benchmarks to inspect."""

    kind: str  # "drive" or "gmail"
    target: str  # channel id, or mailbox address
    state: str  # Drive's resource state ("sync", "change"); "publish" for Gmail
    status: int | None  # the receiver's HTTP status; None when it could not be reached
    sent_at: float


@dataclass
class PushHub:
    clock: Callable[[], float]
    channels: dict[str, DriveChannel] = field(default_factory=dict)
    gmail_watches: dict[str, GmailWatch] = field(default_factory=dict)
    subscriptions: dict[str, PushSubscription] = field(default_factory=dict)  # by topic
    deliveries: list[Delivery] = field(default_factory=list)
    history_of: Callable[[str], int] | None = None  # email -> current historyId
    seed: int = 0

    def __post_init__(self) -> None:
        self.oidc = OidcIssuer(self.clock)
        self._rng = random.Random(f"push:{self.seed}")
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self._queued: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- Drive ------------------------------------------------------------------------------------
    def drive_watch(self, email: str, body: dict[str, Any], drive_id: str | None) -> dict[str, Any]:
        channel_id = body.get("id")
        address = body.get("address")
        if not channel_id or not address:
            raise ApiError(400, "channel id and address are required", "required")
        if body.get("type") not in ("web_hook", "webhook"):
            raise ApiError(400, "channel type must be web_hook", "invalid")
        if not str(address).startswith(("https://", "http://")):
            raise ApiError(400, "invalid address", "invalid")
        now = self._now_ms()
        wanted = int(body["expiration"]) if body.get("expiration") else now + DRIVE_DEFAULT_TTL_MS
        expiration = min(max(wanted, now + 1), now + DRIVE_MAX_TTL_MS)
        with self._lock:
            if channel_id in self.channels:
                raise ApiError(400, f"Channel id {channel_id} not unique", "channelIdNotUnique")
            channel = DriveChannel(
                id=channel_id,
                email=email,
                token=body.get("token"),
                address=address,
                resource_id=uuid.uuid5(uuid.NAMESPACE_URL, f"changes:{email}:{drive_id}").hex[:27],
                expiration_ms=expiration,
                drive_id=drive_id,
            )
            self.channels[channel_id] = channel
        self._enqueue("drive", channel_id, "sync")
        out = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": "https://www.googleapis.com/drive/v3/changes?alt=json",
            "expiration": str(channel.expiration_ms),
        }
        if channel.token is not None:
            out["token"] = channel.token
        return out

    def stop(self, email: str, body: dict[str, Any]) -> None:
        with self._lock:
            channel = self.channels.get(str(body.get("id")))
            if channel is None or channel.resource_id != body.get("resourceId") or channel.email != email:
                raise not_found(f"Channel '{body.get('id')}' not found for project")
            del self.channels[channel.id]

    def expire(self, channel_id: str) -> None:
        """As if the channel's expiration had passed (tests)."""
        with self._lock:
            self.channels[channel_id].expiration_ms = self._now_ms() - 1

    def live_channels(self, email: str | None = None) -> list[DriveChannel]:
        now = self._now_ms()
        with self._lock:
            return [c for c in self.channels.values() if c.expiration_ms > now and email in (None, c.email)]

    def drive_changed(self, email: str, drive_id: str | None) -> None:
        now = self._now_ms()
        with self._lock:
            targets = [
                c.id
                for c in self.channels.values()
                # A channel on a shared drive hears that drive; one on the user's feed hears My Drive.
                if c.email == email and c.expiration_ms > now and c.drive_id == drive_id
            ]
        for channel_id in targets:
            self._enqueue("drive", channel_id, "change")

    def resend(self, channel_id: str, message_number: int, state: str = "change") -> int | None:
        """Send message ``message_number`` of a channel again, now (a retry or a late arrival)."""
        return self._send_drive(channel_id, state, number=message_number)

    # --- Gmail ------------------------------------------------------------------------------------
    def gmail_watch(self, email: str, body: dict[str, Any], history_id: int) -> dict[str, Any]:
        topic = body.get("topicName")
        if not topic or not str(topic).startswith("projects/"):
            raise ApiError(400, "Invalid topicName", "invalidArgument")
        label_ids = body.get("labelIds") or []
        if not isinstance(label_ids, list) or not all(isinstance(x, str) for x in label_ids):
            raise ApiError(400, "Invalid labelIds", "invalidArgument")
        # labelFilterAction is the deprecated name, ignored when labelFilterBehavior is set.
        behavior = str(body.get("labelFilterBehavior") or body.get("labelFilterAction") or "include").lower()
        if behavior not in ("include", "exclude"):
            raise ApiError(400, f"Invalid value for labelFilterBehavior: {behavior}", "invalidArgument")
        expiration = self._now_ms() + GMAIL_WATCH_TTL_MS
        with self._lock:
            # One watch per mailbox: a second call replaces the first.
            self.gmail_watches[email] = GmailWatch(email, topic, expiration, tuple(label_ids), behavior)
        return {"historyId": str(history_id), "expiration": str(expiration)}

    def gmail_stop(self, email: str) -> None:
        with self._lock:
            self.gmail_watches.pop(email, None)

    def subscribe(
        self,
        topic: str,
        push_endpoint: str,
        *,
        service_account: str | None = None,
        audience: str | None = None,
    ) -> None:
        """A Pub/Sub push subscription on ``topic`` (the emulator plays Pub/Sub too);
        ``service_account`` is its ``oidcToken.serviceAccountEmail``, ``audience`` its audience."""
        with self._lock:
            self.subscriptions[topic] = PushSubscription(push_endpoint, service_account, audience)

    def gmail_changed(
        self,
        email: str,
        kind: str = "messageAdded",
        labels: set[str] | None = None,
        changed: set[str] | None = None,
    ) -> None:
        with self._lock:
            watch = self.gmail_watches.get(email)
            expired = watch is None or watch.expiration_ms <= self._now_ms()
            if expired or watch.topic not in self.subscriptions:
                return
            if not watch.wants(kind, labels or set(), changed or set()):
                return
        self._enqueue("gmail", email, "publish")

    # --- sending ----------------------------------------------------------------------------------
    def _enqueue(self, kind: str, target: str, state: str) -> None:
        with self._lock:
            key = (kind, target) if state != "sync" else (kind, target + "#sync")
            if key in self._queued:
                return
            self._queued.add(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emulator-push", daemon=True)
                self._thread.start()
        self._queue.put((kind, target, state))

    def _run(self) -> None:
        while True:
            kind, target, state = self._queue.get()
            with self._lock:
                self._queued.discard((kind, target) if state != "sync" else (kind, target + "#sync"))
            try:
                status = self._send_drive(target, state) if kind == "drive" else self._send_gmail(target)
            except Exception:  # the sender thread must outlive any one bad notification
                logger.exception("emulator: push notification failed")
                status = None
            if status != -1:
                self.deliveries.append(Delivery(kind, target, state, status, self.clock()))

    def _send_drive(self, channel_id: str, state: str, number: int | None = None) -> int | None:
        with self._lock:
            channel = self.channels.get(channel_id)
            if channel is None or channel.expiration_ms <= self._now_ms():
                return -1
            if number is None:
                # 1 on sync; then it grows, not one by one.
                channel.messages = 1 if state == "sync" else channel.messages + self._rng.randint(1, 5)
                number = channel.messages
            headers = {
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Channel-Expiration": format_datetime(
                    datetime.fromtimestamp(channel.expiration_ms / 1000, UTC), usegmt=True
                ),
                "X-Goog-Resource-State": state,
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-URI": "https://www.googleapis.com/drive/v3/changes?alt=json",
                "X-Goog-Message-Number": str(number),
                "Content-Length": "0",
            }
            if channel.token is not None:
                headers["X-Goog-Channel-Token"] = channel.token
            address = channel.address
        return _post(address, b"", headers)

    def _send_gmail(self, email: str) -> int | None:
        with self._lock:
            watch = self.gmail_watches.get(email)
            subscription = self.subscriptions.get(watch.topic) if watch else None
        if watch is None or subscription is None or self.history_of is None:
            return -1
        data = json.dumps({"emailAddress": email, "historyId": self.history_of(email)}).encode()
        message_id = str(uuid.uuid4().int % 10**16)
        published = datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z")
        body = {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": message_id,
                "message_id": message_id,
                "publishTime": published,
                "publish_time": published,
            },
            "subscription": watch.topic.replace("/topics/", "/subscriptions/") + "-push",
        }
        headers = {"Content-Type": "application/json"}
        if subscription.service_account:
            audience = subscription.audience or subscription.endpoint
            token = self.oidc.token(audience=audience, email=subscription.service_account)
            headers["Authorization"] = f"Bearer {token}"
        return _post(subscription.endpoint, json.dumps(body).encode(), headers)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "drive_channels": [
                    {"id": c.id, "email": c.email, "expiration": str(c.expiration_ms), "drive_id": c.drive_id}
                    for c in self.channels.values()
                ],
                "gmail_watches": [
                    {
                        "email": w.email,
                        "topic": w.topic,
                        "expiration": str(w.expiration_ms),
                        "labelIds": list(w.label_ids),
                        "labelFilterBehavior": w.behavior,
                    }
                    for w in self.gmail_watches.values()
                ],
                "subscriptions": {
                    topic: {
                        "push_endpoint": sub.endpoint,
                        "service_account": sub.service_account,
                        "audience": sub.audience,
                    }
                    for topic, sub in self.subscriptions.items()
                },
                "deliveries": len(self.deliveries),
            }


def _post(url: str, body: bytes, headers: dict[str, str]) -> int | None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None
