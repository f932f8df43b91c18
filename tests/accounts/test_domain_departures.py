"""A directory sync that finds many users gone disconnects their accounts in bulk, with what
``accounts disconnect`` (without ``--purge``) leaves for one: the emulator over HTTP, both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monolyth_pipelines.accounts import disconnect, domain
from monolyth_pipelines.store import automation_queries, push_channels
from monolyth_pipelines.store.schema import activity_log, connector_accounts, connector_jobs
from monolyth_pipelines.store.timeutil import utcnow
from tests.accounts.domain_world import DOMAIN, DomainWorld, domain_world

USERS = 150
GONE = 120  # user1..user120 leave; the admin and user121..user149 stay


@pytest.fixture
def crowd(
    engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DomainWorld]:
    yield from domain_world(engine, fresh_db_url, tmp_path, monkeypatch, users=USERS, drive_files=0)


def _statements(engine: sa.Engine) -> list[str]:
    """Every statement the engine sends from now on (an executemany counts once)."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    return sent


def _rows(engine: sa.Engine, ids: list[uuid.UUID]) -> dict[str, Any]:
    a, j, e = connector_accounts.c, connector_jobs.c, activity_log.c
    with engine.connect() as conn:
        accounts = conn.execute(
            sa.select(a.id, a.status, a.status_reason, a.status_message, a.owner_id).where(
                a.id.in_(ids), a.token_json.is_(None)
            )  # SQL NULL, as the app's query finds it
        ).all()
        jobs = conn.execute(
            sa.select(j.account_id, j.status, j.last_error, j.run_id, j.finished_at).where(
                j.account_id.in_(ids)
            )
        ).all()
        logged = conn.execute(
            sa.select(e.event, e.account_id, e.owner_id, e.provider, e.run_id, e.payload)
            .where(e.account_id.in_(ids), e.event != "connector_account_connected")
            .order_by(e.created_at, e.id)
        ).all()
    return {"accounts": accounts, "jobs": jobs, "events": logged}


def _connect(crowd: DomainWorld) -> domain.DomainResult:
    return domain.connect_domain(
        crowd.engine,
        provider="google_drive",
        owner_id=crowd.owner,
        key_info=crowd.key,
        admin_email=f"admin@{DOMAIN}",
    )


def test_a_hundred_and_twenty_departures_are_disconnected_in_bulk_as_one_disconnect_does(
    crowd: DomainWorld,
) -> None:
    result = _connect(crowd)
    assert result.created == USERS
    found = crowd.by_email()
    gone = [found[f"user{n}@{DOMAIN}"].id for n in range(1, GONE + 1)]
    stay = [a.id for a in found.values() if a.id not in set(gone)]
    # Every account has its first sync pending; two of the leavers' are held by runs already, and
    # three of the leavers and one who stays hold a push channel.
    with crowd.engine.begin() as conn:
        automation_queries.request_syncs(
            conn, provider="google_drive", kind="drive_import", requested_by="first_sync"
        )
        for n, account_id in enumerate(gone[:2]):
            conn.execute(
                connector_jobs.update()
                .where(connector_jobs.c.account_id == account_id)
                .values(status="running", run_id=f"run-{n}", started_at=utcnow())
            )
        for n, account_id in enumerate([*gone[:3], stay[0]]):
            push_channels.save_channel(
                conn,
                channel_id=f"channel-{n}",
                account_id=account_id,
                provider="google_drive",
                corpus="user",
                token=f"secret-{n}",
                resource_id=f"resource-{n}",
                expires_at=utcnow(),
                now=utcnow(),
            )
    for n in range(1, GONE + 1):
        crowd.emulator.workspace.update_user(f"user{n}@{DOMAIN}", suspended=n % 2 == 0, deleted=n % 2 == 1)

    terminated: list[str] = []
    sent = _statements(crowd.engine)
    synced = domain.sync_domain(
        crowd.engine, result.domain_id, terminate_run=lambda r: terminated.append(r) or True
    )

    assert (synced.status, synced.disconnected, synced.created) == ("connected", GONE, 0)
    assert sorted(terminated) == ["run-0", "run-1"]
    # Set-based: the 120 accounts are one UPDATE, their jobs one, each kind of event one insert.
    assert sum(s.startswith("UPDATE connector_accounts") for s in sent) == 1
    assert sum(s.startswith("UPDATE connector_jobs") for s in sent) == 1
    assert sum(s.startswith("INSERT INTO activity_log") for s in sent) == 2
    rows = _rows(crowd.engine, gone)
    assert len(rows["accounts"]) == GONE
    assert {(r.status, r.status_reason, r.status_message, r.owner_id) for r in rows["accounts"]} == {
        ("disconnected", None, None, crowd.owner)
    }
    message = f"{disconnect.DISCONNECTED}: {disconnect.REASON}"
    assert len(rows["jobs"]) == GONE
    assert {(j.status, j.last_error) for j in rows["jobs"]} == {("failed", message)}
    assert all(j.finished_at is not None for j in rows["jobs"])
    disconnected = [e for e in rows["events"] if e.event == "connector_account_disconnected"]
    assert sorted(e.account_id for e in disconnected) == sorted(gone)
    assert {(e.owner_id, e.provider, e.run_id) for e in disconnected} == {(crowd.owner, "google_drive", None)}
    assert all(
        e.payload == {"provider": "google_drive", "account_id": str(e.account_id)} for e in disconnected
    )
    failed = [e for e in rows["events"] if e.event == "connector_sync_failed"]
    assert sorted((e.run_id, e.payload["error_code"]) for e in failed) == [
        ("run-0", "account_disconnected"),
        ("run-1", "account_disconnected"),
    ]
    assert set(failed[0].payload) == {"provider", "account_id", "run_id", "error_code", "error_msg"}
    # Each leaver's last event is its disconnect, as after a disconnect of one account.
    last = {e.account_id: e.event for e in rows["events"]}
    assert set(last.values()) == {"connector_account_disconnected"}
    # The leavers' channels are gone; the one of the user who stays is kept.
    with crowd.engine.connect() as conn:
        assert [c.id for c in push_channels.channels_of_accounts(conn, [*gone, *stay])] == ["channel-3"]
    # Those who stay are untouched: connected, their first sync still pending.
    still = _rows(crowd.engine, stay)
    assert still["accounts"] == [] and {j.status for j in still["jobs"]} == {"pending"}
    with crowd.engine.connect() as conn:
        connected = automation_queries.connected_accounts(conn, {"google_drive": "drive_import"})
    assert len(connected) == len(stay)

    # One of those who stay, disconnected alone: the same rows and events as a bulk leaver's.
    with crowd.engine.begin() as conn:
        conn.execute(
            connector_jobs.update()
            .where(connector_jobs.c.account_id == stay[1])
            .values(status="running", run_id="run-alone", started_at=utcnow())
        )
    disconnect.disconnect(crowd.engine, stay[1], terminate_run=lambda r: True)
    alone = _rows(crowd.engine, [stay[1]])
    bulk = _rows(crowd.engine, [gone[0]])

    def shape(found: dict[str, Any]) -> tuple:
        return (
            [(r.status, r.status_reason, r.status_message) for r in found["accounts"]],
            [(j.status, j.last_error) for j in found["jobs"]],
            [(e.event, e.provider, sorted(e.payload), e.payload.get("error_code")) for e in found["events"]],
        )

    assert shape(alone) == shape(bulk)


def test_nothing_is_written_when_no_one_left(crowd: DomainWorld) -> None:
    result = _connect(crowd)
    sent = _statements(crowd.engine)
    again = domain.sync_domain(crowd.engine, result.domain_id)
    assert again.disconnected == 0
    assert not any(s.startswith(("UPDATE connector_accounts", "UPDATE connector_jobs")) for s in sent)
