"""Three days of syncs over the emulator: the change history and the Insights tables they yield.

Each day's syncs run for real (Dagster, HTTP emulator, SQLite or Postgres); afterwards every
timestamp that day's work wrote is moved back to its day, as if the clock had said so. Day 3 is
today.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.insights.build import build_day
from monolyth_pipelines.store import insights as insights_store
from monolyth_pipelines.store.schema import (
    activity_log,
    connector_accounts,
    connector_file_events,
    connector_files,
    connector_jobs,
    connector_sync_state,
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)
from tests.connectors import gmail_harness
from tests.connectors.gmail_harness import GmailHarness
from tests.connectors.harness import DriveHarness

make_gmail = gmail_harness.make_gmail
gmail_env = gmail_harness.gmail_env

PDF = "application/pdf"
# Every time a sync writes: moved as a whole to the scripted day.
OUR_TIMES = {
    connector_jobs: ("started_at", "finished_at", "created_at", "updated_at"),
    connector_files: ("created_at", "updated_at", "deleted_at"),
    connector_file_events: ("observed_at",),
    activity_log: ("created_at",),
    connector_accounts: ("created_at", "updated_at"),
    connector_sync_state: ("last_full_sync_at", "updated_at"),
}


def move_to_day(engine: sa.Engine, since: datetime, delta: timedelta) -> None:
    """Shift every timestamp written since ``since`` by ``delta`` (test data: a handful of rows)."""
    with engine.begin() as conn:
        for table, columns in OUR_TIMES.items():
            key = list(table.primary_key.columns)
            for name in columns:
                column = table.c[name]
                rows = conn.execute(sa.select(*key, column).where(column >= since)).all()
                for row in rows:
                    conn.execute(
                        table.update()
                        .where(*(k == row._mapping[k.name] for k in key))
                        .values({name: row._mapping[name] + delta})
                    )


def events_by_day(engine: sa.Engine) -> dict[date, Counter[tuple[str, str, str]]]:
    e = connector_file_events
    out: dict[date, Counter[tuple[str, str, str]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(sa.select(e.c.observed_at, e.c.provider, e.c.external_id, e.c.event)):
            out.setdefault(row.observed_at.date(), Counter())[(row.provider, row.external_id, row.event)] += 1
    return out


def table_rows(engine: sa.Engine, table: sa.Table, day: date) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.day == day)).all()
    found = [{k: v for k, v in row._mapping.items() if k != "built_at"} for row in rows]
    return sorted(found, key=lambda r: tuple(str(r[c.name]) for c in table.primary_key.columns))


def test_three_days_of_syncs_yield_the_expected_events_and_insights(
    make_drive: Callable[[int], DriveHarness], make_gmail: Callable[..., GmailHarness]
) -> None:
    # Day 1: the accounts are connected and synced for the first time.
    since = datetime.now(UTC)
    drive = make_drive(0)
    gmail = make_gmail(0)
    engine = drive.engine
    files = {
        name: drive.drive.create_file(name, PDF, size=1000 * (i + 1))["id"] for i, name in enumerate("abcde")
    }
    box = gmail.mailbox
    kept = box.deliver(subject="NDA", labels=["INBOX", "Contracts"])
    moved = box.deliver(subject="MSA", labels=["Contracts"])
    today = datetime.now(UTC).date()
    day1, day2, day3 = today - timedelta(days=2), today - timedelta(days=1), today

    assert drive.sync()[0].success and gmail.sync()[0].success
    move_to_day(engine, since, -timedelta(days=2))

    # Day 2: an edit, a rename, a trash, a new file, a Gmail message leaving the label; one
    # Drive run fails before the one that picks the changes up.
    since = datetime.now(UTC)
    drive.drive.modify(files["a"], size=1500)
    drive.drive.rename(files["b"], "b renamed")
    drive.drive.trash(files["c"])
    files["f"] = drive.drive.create_file("f", PDF, size=6000)["id"]
    box.relabel(message_id=moved["id"], remove=["Contracts"])
    drive.emulator.faults.script("drive.changes.list", every=True, status=500)
    failed_result, failed_job = drive.sync()
    assert not failed_result.success and failed_job.status == "failed"
    drive.emulator.faults.clear()
    assert drive.sync()[0].success and gmail.sync()[0].success
    move_to_day(engine, since, -timedelta(days=1))

    # Day 3 (today): a restore from the trash, a permanent deletion, the message back in the label.
    drive.drive.untrash(files["c"])
    drive.drive.delete(files["d"])
    box.relabel(message_id=moved["id"], add=["Contracts"])
    assert drive.sync()[0].success and gmail.sync()[0].success

    d, g = "google_drive", "gmail"
    assert events_by_day(engine) == {
        day1: Counter(
            [(d, files[n], "added") for n in "abcde"] + [(g, kept["id"], "added"), (g, moved["id"], "added")]
        ),
        day2: Counter(
            [
                (d, files["a"], "modified"),
                (d, files["b"], "renamed"),
                (d, files["c"], "trashed"),
                (d, files["f"], "added"),
                (g, moved["id"], "unlabelled"),
            ]
        ),
        day3: Counter(
            [(d, files["c"], "restored"), (d, files["d"], "deleted"), (g, moved["id"], "labelled")]
        ),
    }
    with engine.connect() as conn:
        e, j = connector_file_events, connector_jobs
        # Every event names the job of the run that saw it, on the same account.
        unowned = sa.select(sa.func.count()).select_from(e.outerjoin(j, j.c.id == e.c.job_id))
        assert (
            conn.execute(unowned.where(sa.or_(j.c.id.is_(None), j.c.account_id != e.c.account_id))).scalar()
            == 0
        )
        changes = dict(
            conn.execute(
                sa.select(e.c.event, e.c.changes).where(e.c.event.in_(["modified", "renamed"]))
            ).all()
        )
    assert changes["modified"]["size"] == {"old": 1000, "new": 1500}
    assert changes["renamed"]["title"] == {"old": "b", "new": "b renamed"}

    for day in (day1, day2, day3):
        build_day(engine, day)

    runs = {
        day: {(r["provider"], r["kind"]): r for r in table_rows(engine, insights_sync_runs_daily, day)}
        for day in (day1, day2, day3)
    }
    outcome = {
        day: {k: (r["runs_started"], r["runs_completed"], r["runs_failed"]) for k, r in by_key.items()}
        for day, by_key in runs.items()
    }
    drive_key, gmail_key = (d, "drive_import"), (g, "gmail_import")
    assert outcome == {
        day1: {drive_key: (1, 1, 0), gmail_key: (1, 1, 0)},
        day2: {drive_key: (2, 1, 1), gmail_key: (1, 1, 0)},
        day3: {drive_key: (1, 1, 0), gmail_key: (1, 1, 0)},
    }
    failed_day = runs[day2][drive_key]
    assert failed_day["failure_rate"] == 0.5
    assert failed_day["failures_by_code"] == {"google_unavailable": 1}
    assert (failed_day["items_inserted"], failed_day["items_updated"], failed_day["items_tombstoned"]) == (
        1,
        2,
        1,
    )
    assert runs[day1][drive_key]["items_inserted"] == 5 and runs[day1][drive_key]["api_calls"] > 0
    assert all(r["duration_max_ms"] is not None for by_key in runs.values() for r in by_key.values())

    usage = {
        day: {r["account_id"]: r for r in table_rows(engine, insights_account_usage_daily, day)}
        for day in (day1, day2, day3)
    }
    counts = (
        "runs_started",
        "runs_completed",
        "runs_failed",
        "live_items",
        "live_bytes",
        "items_added",
        "items_modified",
        "items_removed",
    )
    seen = {day: {a: tuple(r[c] for c in counts) for a, r in rows.items()} for day, rows in usage.items()}
    gmail_bytes = {a: gmail.rows(live_only=False)[a]["size"] or 0 for a in (kept["id"], moved["id"])}
    both_mails = sum(gmail_bytes.values())
    assert seen == {
        day1: {
            drive.account_id: (1, 1, 0, 5, 15000, 5, 0, 0),
            gmail.account_id: (1, 1, 0, 2, both_mails, 2, 0, 0),
        },
        day2: {
            drive.account_id: (2, 1, 1, 5, 1500 + 2000 + 4000 + 5000 + 6000, 1, 2, 1),
            gmail.account_id: (1, 1, 0, 1, gmail_bytes[kept["id"]], 0, 0, 1),
        },
        day3: {
            drive.account_id: (1, 1, 0, 5, 1500 + 2000 + 3000 + 5000 + 6000, 1, 0, 1),
            gmail.account_id: (1, 1, 0, 2, both_mails, 1, 0, 0),
        },
    }
    with engine.connect() as conn:
        last_drive_success = max(
            r.finished_at
            for r in conn.execute(
                sa.select(connector_jobs.c.finished_at).where(
                    connector_jobs.c.status == "completed", connector_jobs.c.account_id == drive.account_id
                )
            )
            if r.finished_at.date() == day2
        )
    assert usage[day2][drive.account_id]["minutes_since_success"] == int(
        (insights_store.day_bounds(day2)[1] - last_drive_success).total_seconds() // 60
    )
    assert usage[day1][drive.account_id]["owner_id"] is not None

    activity = {
        day: {(r["provider"], r["external_id"]): (r["changes"], r["events"]) for r in rows}
        for day in (day1, day2, day3)
        for rows in [table_rows(engine, insights_document_activity_daily, day)]
    }
    assert activity[day2] == {
        (d, files["a"]): (1, {"modified": 1}),
        (d, files["b"]): (1, {"renamed": 1}),
        (d, files["c"]): (1, {"trashed": 1}),
        (d, files["f"]): (1, {"added": 1}),
        (g, moved["id"]): (1, {"unlabelled": 1}),
    }
    assert activity[day3] == {
        (d, files["c"]): (1, {"restored": 1}),
        (d, files["d"]): (1, {"deleted": 1}),
        (g, moved["id"]): (1, {"labelled": 1}),
    }
    assert len(activity[day1]) == 7
    b_row = next(
        r
        for r in table_rows(engine, insights_document_activity_daily, day2)
        if r["external_id"] == files["b"]
    )
    assert b_row["title"] == "b renamed" and b_row["mime"] == PDF and b_row["first_seen_at"].date() == day1

    # Rebuilding a day replaces exactly its rows: the same rows again, other days untouched.
    before = {t.name: {day: table_rows(engine, t, day) for day in (day1, day2, day3)} for t in OUTPUTS}
    build_day(engine, day2)
    build_day(engine, day2)
    after = {t.name: {day: table_rows(engine, t, day) for day in (day1, day2, day3)} for t in OUTPUTS}
    assert after == before


OUTPUTS = (insights_sync_runs_daily, insights_account_usage_daily, insights_document_activity_daily)


def test_a_run_that_dies_between_pages_leaves_events_and_files_consistent(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(2500)
    # Page 1 of the listing commits; every later listing call fails until the run gives up.
    drive.emulator.faults.script("drive.files.list", calls=range(2, 1000), status=500)
    result, job = drive.sync()
    assert not result.success and job.status == "failed"

    def per_item() -> tuple[set[str], Counter[tuple[str, str]]]:
        with drive.engine.connect() as conn:
            e = connector_file_events
            logged = Counter(
                (row.external_id, row.event)
                for row in conn.execute(
                    sa.select(e.c.external_id, e.c.event).where(e.c.account_id == drive.account_id)
                )
            )
        return set(drive.rows()), logged

    rows, logged = per_item()
    assert 0 < len(rows) < 2500
    assert logged == Counter((external_id, "added") for external_id in rows)

    drive.emulator.faults.clear()
    result, job = drive.sync()
    assert result.success, job.last_error
    rows, logged = per_item()
    # The resumed listing fetches page 1 again: unchanged rows log nothing the second time.
    assert len(rows) > 1000 and logged == Counter((external_id, "added") for external_id in rows)
