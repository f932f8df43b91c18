"""Gmail Pub/Sub pushes authenticated as Google does it: the push subscription's OIDC token,
signed by Google (here the emulator, which serves its certificates in Google's format), checked
for signature, expiry, audience, issuer and service account; and a receiver whose own logs never
hold the push secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.emulator.oidc import CERTS_PATH, new_signing_key, sign
from monolyth_pipelines.store import sync_state
from monolyth_pipelines.sync import push
from tests.orchestration.helpers import all_jobs
from tests.orchestration.push_harness import (
    PUSH_SA,
    SECRET,
    TOPIC,
    Receiver,
    bearer,
    connected,
    free_port,
    pubsub_body,
    wait_for,
)

pytest_plugins = ["tests.orchestration.push_harness"]  # the emu and receiver fixtures

ROOT = Path(__file__).resolve().parents[2]


def watched_mailbox(engine: sa.Engine, emu: GoogleEmulator, email: str) -> tuple[uuid.UUID, int]:
    """A Gmail account synced up to its current history, with a live watch; (account, historyId)."""
    account = connected(engine, emu, email, provider="gmail")
    history_id = emu.gmail(email).history_id
    with engine.begin() as conn:
        sync_state.advance_cursor(conn, account, "gmail", str(history_id))
    assert dict(push.maintain_channels(engine, ["gmail"]).registered) == {"gmail": 1}
    return account, history_id


def forged(emu: GoogleEmulator, claims: dict) -> str:
    """Claims signed with a key that is not Google's, under the key id Google uses."""
    [kid] = emu.push.oidc.certs()
    private_pem, _ = new_signing_key()
    return sign(private_pem, kid, claims)


def test_gmail_pushes_without_a_genuine_oidc_token_get_403_and_create_nothing(
    emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    email = "mia@example.com"
    account, history_id = watched_mailbox(engine, emu, email)
    body = pubsub_body(email, history_id + 10)
    audience = receiver.gmail_audience
    issued = time.time()
    valid_claims = {
        "aud": audience,
        "email": PUSH_SA,
        "email_verified": True,
        "iat": int(issued),
        "exp": int(issued) + 3600,
        "iss": "https://accounts.google.com",
        "sub": "1",
    }
    refused = {
        "forged": forged(emu, valid_claims),
        "expired": emu.push.oidc.token(audience=audience, email=PUSH_SA, issued_at=issued - 7200),
        "wrong audience": emu.push.oidc.token(audience="https://elsewhere.example/hook", email=PUSH_SA),
        "wrong service account": emu.push.oidc.token(audience=audience, email="intruder@example.com"),
        "unverified email": emu.push.oidc.token(audience=audience, email=PUSH_SA, email_verified=False),
        "wrong issuer": emu.push.oidc.token(audience=audience, email=PUSH_SA, iss="https://evil.example"),
        "not a JWT": "not-a-token",
    }
    for why, token in refused.items():
        assert receiver.post("/webhooks/gmail", body, bearer(token)) == 403, why
    assert receiver.post("/webhooks/gmail", body, {"Content-Type": "application/json"}) == 403, "no token"
    assert all_jobs(engine, account) == [], "nothing was queued"

    genuine = emu.push.oidc.token(audience=audience, email=PUSH_SA)
    assert receiver.post("/webhooks/gmail", body, bearer(genuine)) == 204
    assert [(j.kind, j.meta_json) for j in all_jobs(engine, account)] == [
        ("gmail_import", {"requested_by": "push"})
    ]


def _answer(receiver: Receiver, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(receiver.gmail_audience, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_an_authenticated_push_gets_the_same_answer_whether_or_not_the_mailbox_is_watched(
    emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    email = "ned@example.com"
    _, history_id = watched_mailbox(engine, emu, email)
    token = emu.push.oidc.token(audience=receiver.gmail_audience, email=PUSH_SA)
    answers = {
        "watched, new history": _answer(receiver, pubsub_body(email, history_id + 10), bearer(token)),
        "watched, old history": _answer(receiver, pubsub_body(email, history_id - 10), bearer(token)),
        "not watched": _answer(receiver, pubsub_body("nobody@example.com", 99), bearer(token)),
    }
    assert set(answers.values()) == {(204, b"")}, answers


def test_the_receivers_own_log_holds_no_push_secret(
    emu: GoogleEmulator, engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real `webhook serve` process: its access log would print a ?token= secret."""
    email = "oli@example.com"
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MONOLYTH_DATABASE_URL": fresh_db_url,
        "MONOLYTH_WEBHOOK_URL": receiver.url,
        # Both checks on: the OIDC token and the shared secret in the endpoint URL.
        "MONOLYTH_WEBHOOK_SECRET": SECRET,
        "MONOLYTH_GMAIL_PUSH_SERVICE_ACCOUNT": PUSH_SA,
        "MONOLYTH_GMAIL_PUSH_CERTS_URL": f"{emu.base_url}{CERTS_PATH}",
        "MONOLYTH_GMAIL_PUBSUB_TOPIC": TOPIC,
    }
    log = tmp_path / "receiver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "monolyth_pipelines.cli", "webhook", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            started = lambda: b"Uvicorn running" in log.read_bytes() or process.poll() is not None  # noqa: E731
            wait_for(started, "the receiver to start", 60)
            assert process.poll() is None, log.read_text()
            for name in ("MONOLYTH_WEBHOOK_URL", "MONOLYTH_GMAIL_PUBSUB_TOPIC", "MONOLYTH_WEBHOOK_SECRET"):
                monkeypatch.setenv(name, env[name])
            account, history_id = watched_mailbox(engine, emu, email)
            # Pub/Sub pushing to an endpoint that carries the secret, with its OIDC token (whose
            # audience, left unset, is that whole URL).
            endpoint = f"{receiver.gmail_audience}?token={SECRET}"
            emu.push.subscribe(TOPIC, endpoint, service_account=PUSH_SA)
            emu.gmail(email).deliver(subject="contract", labels=("Contracts",))
            wait_for(lambda: any(d.kind == "gmail" for d in emu.push.deliveries), "push")
            assert [d.status for d in emu.push.deliveries if d.kind == "gmail"] == [204]
            assert len(all_jobs(engine, account)) == 1
            token = emu.push.oidc.token(audience=receiver.gmail_audience, email=PUSH_SA)
            body = pubsub_body(email, history_id + 50)
            # A genuine token with a wrong secret, and the right secret with a bad token: refused.
            assert receiver.post("/webhooks/gmail?token=guess", body, bearer(token)) == 403
            assert receiver.post(f"/webhooks/gmail?token={SECRET}", body, bearer(token[:-4] + "AAAA")) == 403
            assert receiver.post(f"/webhooks/gmail?token={SECRET}", body, bearer(token)) == 204
            time.sleep(0.5)  # let the access log lines reach the file
        finally:
            process.terminate()
            process.wait(10)
    text = log.read_text()
    assert 'POST /webhooks/gmail HTTP/1.1" 204' in text, "the access log still logs each request"
    assert SECRET not in text and "guess" not in text
    assert token not in text and token.split(".")[2] not in text
