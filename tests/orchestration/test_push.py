"""Push notifications over real HTTP: the emulator's Drive channels and Gmail Pub/Sub pushes reach
the webhook receiver (starlette under uvicorn), which queues one pending job per burst; forged and
expired channels are refused; channels are renewed and stopped on disconnect."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from monolyth_pipelines.cli import main as cli_main
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.store import jobs, push_channels, sync_state
from monolyth_pipelines.store.schema import JobStatus, connector_files, connector_push_channels
from monolyth_pipelines.sync import push
from tests.orchestration.deployment import Deployment
from tests.orchestration.helpers import all_jobs, connect_account, now
from tests.orchestration.push_harness import (
    PDF,
    PUSH_SA,
    SECRET,
    TOPIC,
    Receiver,
    bearer,
    channels,
    connected,
    drive_headers,
    pubsub_body,
    synced_with_channel,
    wait_for,
)

pytest_plugins = ["tests.orchestration.push_harness"]  # the emu, receiver and inline fixtures


def test_a_notification_arriving_three_times_gives_one_job_and_one_run(
    inline: Deployment, emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    account = synced_with_channel(inline, engine, emu, "ada@example.com", via_sensor=True)
    runs_before = len(inline.runs())

    # A change at Google: the emulator notifies the receiver over HTTP, which queues a job.
    emu.drive("ada@example.com").create_file("pushed.pdf", PDF, size=2048)
    wait_for(
        lambda: any(d.state == "change" and d.status == 200 for d in emu.push.deliveries), "notification"
    )
    # The same notification twice more (Google redelivers, or two changes land together).
    [channel] = channels(engine, account)
    for _ in range(2):
        assert receiver.post("/webhooks/drive", headers=drive_headers(emu, channel.id)) == 200

    pending = [j for j in all_jobs(engine, account) if j.status == JobStatus.PENDING]
    assert len(pending) == 1
    assert pending[0].meta_json == {"requested_by": "push"}
    inline.tick(2)
    new_runs = inline.runs()[runs_before:]
    # One run: the provider's batch run, since the account was synced before.
    assert len(new_runs) == 1 and new_runs[0].job_name == "google_drive_batch_sync"
    inline.dequeue()
    with engine.connect() as conn:
        titles = conn.execute(
            sa.select(connector_files.c.title).where(connector_files.c.account_id == account)
        ).scalars()
        assert "pushed.pdf" in list(titles)
    assert [j.status for j in all_jobs(engine, account)] == [JobStatus.COMPLETED, JobStatus.COMPLETED]


def test_forged_expired_and_oversized_notifications_are_refused_and_create_nothing(
    inline: Deployment, emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    account = synced_with_channel(inline, engine, emu, "bob@example.com")
    [channel] = channels(engine, account)
    post = receiver.post
    assert (
        post("/webhooks/drive", headers=drive_headers(emu, channel.id, **{"X-Goog-Channel-Token": "guess"}))
        == 403
    )
    assert (
        post("/webhooks/drive", headers=drive_headers(emu, channel.id) | {"X-Goog-Channel-ID": "nope"}) == 403
    )
    assert (
        post("/webhooks/drive", headers=drive_headers(emu, channel.id, **{"X-Goog-Resource-ID": "other"}))
        == 403
    )
    headers = drive_headers(emu, channel.id)
    del headers["X-Goog-Channel-Token"]
    assert post("/webhooks/drive", headers=headers) == 403
    assert post("/webhooks/drive", b"x" * 5000, drive_headers(emu, channel.id)) == 413
    # Gmail pushes without a push token, or with a shared secret the receiver does not take for one.
    pubsub = pubsub_body("bob@example.com", 9)
    assert post("/webhooks/gmail", pubsub, {"Content-Type": "application/json"}) == 403
    assert post(f"/webhooks/gmail?token={SECRET}", pubsub, {"Content-Type": "application/json"}) == 403

    # Expired: the right token, but past the channel's expiration.
    with engine.begin() as conn:
        conn.execute(
            connector_push_channels.update()
            .where(connector_push_channels.c.id == channel.id)
            .values(expires_at=now() - timedelta(seconds=1))
        )
    assert post("/webhooks/drive", headers=drive_headers(emu, channel.id)) == 410
    assert [j.status for j in all_jobs(engine, account)] == [JobStatus.COMPLETED], "nothing was queued"


def test_channels_are_renewed_before_they_expire_and_stopped_on_disconnect(
    inline: Deployment, emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine, fresh_db_url: str
) -> None:
    account = synced_with_channel(inline, engine, emu, "cy@example.com")
    [old] = channels(engine, account)
    assert [c.id for c in emu.push.live_channels("cy@example.com")] == [old.id]

    # Ten minutes from expiry (inside MONOLYTH_PUSH_RENEW_BEFORE_MINUTES): the next pass replaces it.
    with engine.begin() as conn:
        conn.execute(
            connector_push_channels.update()
            .where(connector_push_channels.c.id == old.id)
            .values(expires_at=now() + timedelta(minutes=10))
        )
    done = push.maintain_channels(engine, ["google_drive"])
    assert (dict(done.registered), done.stopped, dict(done.errors)) == ({"google_drive": 1}, 1, {})
    [new] = channels(engine, account)
    assert new.id != old.id and new.expires_at > now() + timedelta(hours=20)
    assert [c.id for c in emu.push.live_channels("cy@example.com")] == [new.id], "the old one is stopped"
    # A second pass has nothing to do.
    again = push.maintain_channels(engine, ["google_drive"])
    assert (dict(again.registered), again.stopped) == ({}, 0)

    assert cli_main(["--database-url", fresh_db_url, "accounts", "disconnect", str(account)]) == 0
    assert channels(engine, account) == []
    assert emu.push.live_channels("cy@example.com") == []
    # A change after disconnecting notifies nobody and queues nothing.
    emu.drive("cy@example.com").create_file("late.pdf", PDF, size=10)
    time.sleep(0.3)
    assert [j.status for j in all_jobs(engine, account)] == [JobStatus.COMPLETED]


def test_gmail_pubsub_pushes_queue_one_job_and_repeats_or_old_history_queue_nothing(
    emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    account = connected(engine, emu, "dee@example.com", provider="gmail")
    box = emu.gmail("dee@example.com")
    with engine.begin() as conn:
        sync_state.advance_cursor(conn, account, "gmail", str(box.history_id))
    emu.push.subscribe(TOPIC, f"{receiver.url}/webhooks/gmail", service_account=PUSH_SA)
    done = push.maintain_channels(engine, ["gmail"])
    assert dict(done.registered) == {"gmail": 1}
    [channel] = channels(engine, account)
    assert (channel.resource_id, channel.token_hash) == ("dee@example.com", None)

    # New mail in the label: Gmail publishes, Pub/Sub pushes to the receiver, which queues one job.
    box.deliver(subject="contract v2", labels=("INBOX", "Contracts"))
    wait_for(lambda: any(d.kind == "gmail" and d.status == 204 for d in emu.push.deliveries), "push")
    box.deliver(subject="contract v3", labels=("INBOX", "Contracts"))
    wait_for(lambda: sum(d.kind == "gmail" and d.status == 204 for d in emu.push.deliveries) >= 2, "push")
    pending = [j for j in all_jobs(engine, account) if j.status == JobStatus.PENDING]
    assert [(j.kind, j.meta_json) for j in pending] == [("gmail_import", {"requested_by": "push"})]

    # A late push about history already synced creates nothing, and is still acknowledged.
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM connector_jobs"))
        sync_state.advance_cursor(conn, account, "gmail", str(box.history_id))
    token = emu.push.oidc.token(audience=receiver.gmail_audience, email=PUSH_SA)
    assert receiver.post("/webhooks/gmail", pubsub_body("dee@example.com", 5), bearer(token)) == 204
    assert all_jobs(engine, account) == []

    # Disconnecting stops the watch at Google.
    assert push.stop_channels(account, engine=engine) == 1
    assert "dee@example.com" not in emu.push.gmail_watches


def test_a_notification_during_a_running_sync_gets_one_more_run_after_it(
    receiver: Receiver, engine: sa.Engine
) -> None:
    account = connect_account(engine)
    with engine.begin() as conn:
        push_channels.save_channel(
            conn,
            channel_id="ch-1",
            account_id=account,
            provider="google_drive",
            corpus="drive",
            token="s3cret-token",
            resource_id="res-1",
            expires_at=now() + timedelta(hours=1),
            now=now() - timedelta(minutes=5),
        )
        job_id = jobs.create_job(conn, account, "drive_import", status=JobStatus.RUNNING)
        conn.execute(
            sa.text("UPDATE connector_jobs SET started_at = :t WHERE account_id = :a"),
            {
                "t": now() - timedelta(minutes=1),
                "a": account if conn.dialect.name == "postgresql" else account.hex,
            },
        )
    headers = {
        "X-Goog-Channel-ID": "ch-1",
        "X-Goog-Channel-Token": "s3cret-token",
        "X-Goog-Resource-State": "change",
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Message-Number": "2",
    }
    assert receiver.post("/webhooks/drive", headers=headers) == 200  # joins the running job
    assert len(all_jobs(engine, account)) == 1
    assert push.requeue_notified(engine, {"google_drive": "drive_import"}) == 0, "still running"
    with engine.begin() as conn:
        jobs.finish_job(conn, job_id, JobStatus.COMPLETED)
    assert push.requeue_notified(engine, {"google_drive": "drive_import"}) == 1
    assert push.requeue_notified(engine, {"google_drive": "drive_import"}) == 0
    assert [j.status for j in all_jobs(engine, account)] == [JobStatus.COMPLETED, JobStatus.PENDING]
