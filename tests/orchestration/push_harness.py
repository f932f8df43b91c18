"""What the push tests share: the emulator, the webhook receiver (starlette under uvicorn, on a
thread), and helpers to get an account synced with a live channel.

The receiver authenticates Gmail pushes as production does, with the push subscription's
Google-signed OIDC token; the emulator signs them and serves its certificates in Google's format.

Test modules load the fixtures with ``pytest_plugins`` after importing the helpers, too late for
pytest to rewrite this module's asserts (PYTEST_DONT_REWRITE says so; the asserts carry messages).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
import uvicorn

from monolyth_pipelines.defs.push import PUSH_CHANNELS_INTERVAL_SECONDS
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.emulator.oidc import CERTS_PATH
from monolyth_pipelines.store import push_channels
from monolyth_pipelines.store.schema import JobStatus
from monolyth_pipelines.sync import push
from monolyth_pipelines.webhook.app import create_app
from tests import grants
from tests.orchestration.deployment import Deployment, deployment
from tests.orchestration.helpers import all_jobs

PDF = "application/pdf"
SECRET = "pubsub-shared-secret"
TOPIC = "projects/monolyth-test/topics/gmail"
PUSH_SA = "gmail-push@monolyth-test.iam.gserviceaccount.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Receiver:
    url: str

    @property
    def gmail_audience(self) -> str:
        return f"{self.url}/webhooks/gmail"

    def post(self, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(self.url + path, data=body, headers=headers or {}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleEmulator]:
    emulator = GoogleEmulator(seed=15)
    # Accounts connect through the deployment's OAuth client, as in production.
    with grants.serve_as_deployment(emulator, monkeypatch) as base_url:
        monkeypatch.setenv("MONOLYTH_GMAIL_PUSH_CERTS_URL", f"{base_url}{CERTS_PATH}")
        yield emulator


def receiver_env(monkeypatch: pytest.MonkeyPatch, fresh_db_url: str, url: str) -> None:
    monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MONOLYTH_WEBHOOK_URL", url)
    monkeypatch.setenv("MONOLYTH_GMAIL_PUSH_SERVICE_ACCOUNT", PUSH_SA)
    monkeypatch.setenv("MONOLYTH_GMAIL_PUBSUB_TOPIC", TOPIC)
    monkeypatch.setenv("MONOLYTH_WEBHOOK_MAX_BODY_BYTES", "4096")


@pytest.fixture
def receiver(
    monkeypatch: pytest.MonkeyPatch, fresh_db_url: str, engine: sa.Engine, emu: GoogleEmulator
) -> Iterator[Receiver]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    receiver_env(monkeypatch, fresh_db_url, url)
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.02)
    try:
        yield Receiver(url)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def inline(dagster_pg_url: str | None, receiver: Receiver) -> Iterator[Deployment]:
    with deployment(dagster_pg_url, mode="inline") as dep:
        yield dep


def wait_for(predicate, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def connected(
    engine: sa.Engine, emulator: GoogleEmulator, email: str, provider: str = "google_drive"
) -> uuid.UUID:
    """A connected account of the emulated Google user ``email`` (created on first use; a second
    call is a second owner connecting the same Google user)."""
    if email not in {a.email for a in emulator.accounts}:
        emulator.add_account(email, drive_files=4, gmail_threads=3 if provider == "gmail" else 0)
    person = emulator.account(email)
    return grants.connect(engine, emulator, person.email, provider)


def channels(engine: sa.Engine, account: uuid.UUID) -> list[push_channels.Channel]:
    with engine.connect() as conn:
        return push_channels.channels_of(conn, account)


def synced_with_channel(
    dep: Deployment, engine: sa.Engine, emulator: GoogleEmulator, email: str, *, via_sensor: bool = False
) -> uuid.UUID:
    """Connected, first sync done, and a live channel on its corpus."""
    account = connected(engine, emulator, email)
    dep.tick(2)
    dep.dequeue()
    assert [j.status for j in all_jobs(engine, account)] == [JobStatus.COMPLETED]
    if via_sensor:
        # The push sensor, ticking with the others, registers it once its interval has passed.
        dep.tick(PUSH_CHANNELS_INTERVAL_SECONDS // 61 + 1)
    else:
        push.maintain_channels(engine, ["google_drive"])
    [channel] = channels(engine, account)
    assert channel.corpus == "drive"
    wait_for(
        lambda: any(d.state == "sync" and d.status == 204 for d in emulator.push.deliveries), "sync message"
    )
    return account


def drive_headers(emulator: GoogleEmulator, channel_id: str, **override: str) -> dict[str, str]:
    live = emulator.push.channels[channel_id]
    headers = {
        "X-Goog-Channel-ID": live.id,
        "X-Goog-Channel-Token": live.token or "",
        "X-Goog-Resource-State": "change",
        "X-Goog-Resource-ID": live.resource_id,
        "X-Goog-Message-Number": "700",
    }
    return headers | override


def pubsub_body(email: str, history_id: int) -> bytes:
    data = base64.b64encode(json.dumps({"emailAddress": email, "historyId": history_id}).encode())
    return json.dumps({"message": {"data": data.decode(), "messageId": "1"}}).encode()


def bearer(token: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
