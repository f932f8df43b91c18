"""Push as Google sends it, over real HTTP between the emulator and the receiver: Drive message
numbers (retries and reordering), changes the account's limits exclude, Gmail watches on the
synced label only, two owners of one mailbox, and one undecryptable grant among many."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.store import jobs, push_channels, sync_state
from monolyth_pipelines.store.schema import JobStatus, connector_push_channels
from monolyth_pipelines.store.token_crypto import generate_key
from monolyth_pipelines.sync import push
from tests.orchestration.deployment import Deployment
from tests.orchestration.helpers import all_jobs, now
from tests.orchestration.push_harness import (
    PDF,
    PUSH_SA,
    TOPIC,
    Receiver,
    channels,
    connected,
    synced_with_channel,
    wait_for,
)

pytest_plugins = ["tests.orchestration.push_harness"]  # the emu, receiver and inline fixtures

KINDS = {"google_drive": "drive_import"}


def pending(engine: sa.Engine, account: uuid.UUID) -> list[jobs.Job]:
    return [j for j in all_jobs(engine, account) if j.status == JobStatus.PENDING]


def delivered(emu: GoogleEmulator, kind: str, after: int, status: int) -> int:
    return sum(d.kind == kind and d.status == status for d in emu.push.deliveries[after:])


def change_and_wait(emu: GoogleEmulator, email: str, name: str, mime: str, size: int) -> None:
    """A file change at Google, and its notification answered by the receiver."""
    before = len(emu.push.deliveries)
    emu.drive(email).create_file(name, mime, size=size)
    wait_for(lambda: delivered(emu, "drive", before, 200) == 1, f"the notification about {name}")


def test_a_replayed_or_reordered_drive_message_creates_nothing(
    inline: Deployment, emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    email = "fay@example.com"
    account = synced_with_channel(inline, engine, emu, email)
    [channel] = channels(engine, account)
    change_and_wait(emu, email, "first.pdf", PDF, 100)
    number = emu.push.channels[channel.id].messages
    assert number > 1, "message numbers grow past the sync message's 1"
    [job] = pending(engine, account)
    with engine.begin() as conn:
        jobs.finish_job(conn, job.id, JobStatus.COMPLETED)
        kept = push_channels.get_channel(conn, channel.id)
    assert kept is not None and kept.last_message_number == number

    # Google delivers the same message again, then an earlier one arrives late: both are
    # acknowledged (2xx, or Google would retry them) and neither queues a sync.
    assert emu.push.resend(channel.id, number) == 200
    assert emu.push.resend(channel.id, number - 1) == 200
    assert pending(engine, account) == []
    with engine.connect() as conn:
        after = push_channels.get_channel(conn, channel.id)
    assert after is not None
    assert (after.last_message_number, after.last_message_at) == (number, kept.last_message_at)

    # The next message is acted on.
    change_and_wait(emu, email, "second.pdf", PDF, 100)
    assert [j.meta_json for j in pending(engine, account)] == [{"requested_by": "push"}]


def test_drive_changes_the_limits_exclude_cost_a_probe_not_a_run(
    inline: Deployment, emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    email = "gus@example.com"
    account = synced_with_channel(inline, engine, emu, email)
    listed = emu.stats_snapshot()
    # An image (not a supported type) and a PDF over MAX_FILE_SIZE_MB: the run would skip both.
    change_and_wait(emu, email, "photo.png", "image/png", 100)
    change_and_wait(emu, email, "scan.pdf", PDF, 30 * 1024 * 1024)
    assert pending(engine, account) == []
    assert push.requeue_notified(engine, KINDS) == 0, "nor is a sync owed after the last one"
    calls = emu.stats_snapshot()
    probes = _calls(calls, email, "drive.changes.list") - _calls(listed, email, "drive.changes.list")
    assert probes == 2, "one changes.list per notification decided it"

    # A file the limits keep: the notification queues its sync.
    change_and_wait(emu, email, "contract.pdf", PDF, 2048)
    assert [j.meta_json for j in pending(engine, account)] == [{"requested_by": "push"}]


def _calls(snapshot: dict, email: str, endpoint: str) -> int:
    return snapshot["accounts"].get(email, {}).get("api_calls", {}).get(endpoint, 0)


def _with_cursor(engine: sa.Engine, emu: GoogleEmulator, account: uuid.UUID, email: str, corpus: str) -> None:
    summary = emu.account_summary(email)
    cursor = summary["start_page_token"] if corpus == "drive" else summary["history_id"]
    with engine.begin() as conn:
        sync_state.advance_cursor(conn, account, corpus, str(cursor))


def test_one_undecryptable_grant_leaves_the_other_accounts_channels_renewed(
    emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = {email: connected(engine, emu, email) for email in ("hal@example.com", "ida@example.com")}
    # A grant sealed under a key this deployment no longer has.
    keys = monkeypatch.context()
    with keys as patched:
        patched.setenv("MONOLYTH_TOKEN_KEYS", generate_key())
        bad = connected(engine, emu, "jon@example.com")
    for email, account in [*good.items(), ("jon@example.com", bad)]:
        _with_cursor(engine, emu, account, email, "drive")

    done = push.maintain_channels(engine, ["google_drive"])
    assert (dict(done.registered), dict(done.errors)) == ({"google_drive": 2}, {"token_key_unavailable": 1})
    first = {email: channels(engine, account) for email, account in good.items()}
    assert all(len(held) == 1 for held in first.values())
    assert channels(engine, bad) == []

    # An hour later the good channels near expiry: the pass renews them, the bad grant again
    # only counts.
    with engine.begin() as conn:
        conn.execute(connector_push_channels.update().values(expires_at=now() + timedelta(minutes=10)))
    again = push.maintain_channels(engine, ["google_drive"])
    assert (dict(again.registered), again.stopped, dict(again.errors)) == (
        {"google_drive": 2},
        2,
        {"token_key_unavailable": 1},
    )
    for email, account in good.items():
        [renewed] = channels(engine, account)
        assert renewed.id != first[email][0].id and renewed.expires_at > now() + timedelta(hours=20)
        assert [c.id for c in emu.push.live_channels(email)] == [renewed.id]


def _gmail_account(engine: sa.Engine, emu: GoogleEmulator, email: str) -> uuid.UUID:
    account = connected(engine, emu, email, provider="gmail")
    _with_cursor(engine, emu, account, email, "gmail")
    return account


def test_a_gmail_watch_asks_for_the_synced_label_only(
    emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    email = "kim@example.com"
    account = _gmail_account(engine, emu, email)
    box = emu.gmail(email)
    contracts = next(label["id"] for label in box.label_list() if label["name"] == "Contracts")
    emu.push.subscribe(TOPIC, receiver.gmail_audience, service_account=PUSH_SA)
    assert dict(push.maintain_channels(engine, ["gmail"]).registered) == {"gmail": 1}
    watch = emu.push.gmail_watches[email]
    assert (watch.label_ids, watch.behavior) == ((contracts,), "include")

    # Mail in another label: no push.
    before = len(emu.push.deliveries)
    box.deliver(subject="newsletter", labels=("INBOX", "UNREAD"))
    time.sleep(0.5)
    assert emu.push.deliveries[before:] == [], "mail outside the label pushes nothing"
    assert pending(engine, account) == []
    # Mail in the label: one push, one sync.
    labelled = box.deliver(subject="contract v1", labels=("Contracts", "UNREAD"))
    wait_for(lambda: delivered(emu, "gmail", before, 204) == 1, "the labelled mail's push")
    # Read/unread flips, on mail in the label too, and mail in other labels: no push.
    with_label = len(emu.push.deliveries)
    box.relabel(message_id=labelled["id"], remove=["UNREAD"])
    box.deliver(subject="receipt", labels=("Receipts",))
    time.sleep(0.5)
    assert emu.push.deliveries[with_label:] == [], "nothing outside the label pushes"
    [job] = pending(engine, account)
    assert job.kind == "gmail_import"


def test_two_owners_of_one_mailbox_each_get_notified_and_one_leaving_keeps_the_others_watch(
    emu: GoogleEmulator, receiver: Receiver, engine: sa.Engine
) -> None:
    email = "lou@example.com"
    first, second = _gmail_account(engine, emu, email), _gmail_account(engine, emu, email)
    emu.push.subscribe(TOPIC, receiver.gmail_audience, service_account=PUSH_SA)
    assert dict(push.maintain_channels(engine, ["gmail"]).registered) == {"gmail": 2}
    box = emu.gmail(email)

    before = len(emu.push.deliveries)
    box.deliver(subject="contract", labels=("Contracts",))
    wait_for(lambda: delivered(emu, "gmail", before, 204) == 1, "push")
    assert [len(pending(engine, a)) for a in (first, second)] == [1, 1], "each owner gets its sync"

    # The first owner leaves: the mailbox's one watch at Google stays for the second.
    assert push.stop_channels(first, engine=engine) == 1
    assert email in emu.push.gmail_watches
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM connector_jobs"))
    before = len(emu.push.deliveries)
    box.deliver(subject="contract v2", labels=("Contracts",))
    wait_for(lambda: delivered(emu, "gmail", before, 204) == 1, "push")
    assert (pending(engine, first), len(pending(engine, second))) == ([], 1)

    # The last one leaving stops it.
    assert push.stop_channels(second, engine=engine) == 1
    assert email not in emu.push.gmail_watches
