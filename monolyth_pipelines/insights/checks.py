"""What the asset checks verify, as plain functions over a connection (tests call them too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store import insights as store
from monolyth_pipelines.store.schema import insights_account_usage_daily, insights_sync_runs_daily


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    mismatches: list[dict[str, Any]] = field(default_factory=list)


def runs_match_jobs(conn: sa.Connection, day: date) -> CheckOutcome:
    """Per provider and kind: the day's completed + failed + refused equal connector_jobs finished
    that day."""
    start, end = store.day_bounds(day)
    expected = store.finished_jobs_by_provider_kind(conn, start, end)
    table = store.read_days(conn, insights_sync_runs_daily, day, day)
    found = {
        (row.provider, row.kind): int(row.runs_completed + row.runs_failed + row.runs_refused)
        for row in table.itertuples(index=False)
    }
    mismatches = [
        {"provider": p, "kind": k, "table": found.get((p, k), 0), "connector_jobs": expected.get((p, k), 0)}
        for p, k in sorted(expected.keys() | found.keys())
        if found.get((p, k), 0) != expected.get((p, k), 0)
    ]
    if mismatches:
        return CheckOutcome(
            False, f"{len(mismatches)} provider/kind counts differ from connector_jobs", mismatches
        )
    return CheckOutcome(
        True, f"completed + failed + refused match connector_jobs ({sum(expected.values())} runs)"
    )


def live_items_match_files(conn: sa.Connection, day: date, today: date) -> CheckOutcome:
    """For the current day: each account's live_items equals its live rows in connector_files."""
    if day != today:
        return CheckOutcome(True, "checked for the current day only (connector_files holds today's state)")
    expected = store.live_items_now(conn)
    table = store.read_days(conn, insights_account_usage_daily, day, day)
    found = {row.account_id: int(row.live_items) for row in table.itertuples(index=False)}
    mismatches = [
        {"account_id": str(a), "table": found.get(a, 0), "connector_files": expected.get(a, 0)}
        for a in sorted(expected.keys() | found.keys(), key=str)
        if found.get(a, 0) != expected.get(a, 0)
    ]
    if mismatches:
        return CheckOutcome(
            False, f"{len(mismatches)} accounts' live items differ from connector_files", mismatches
        )
    return CheckOutcome(True, f"live items match connector_files for {len(expected)} accounts")


def no_negative_counts(conn: sa.Connection, table: sa.Table, day: date) -> CheckOutcome:
    numeric = [
        c.name
        for c in table.c
        if isinstance(c.type, (sa.Integer, sa.BigInteger))
        and not c.primary_key
        and c.name != "minutes_since_success"
    ]
    condition = sa.or_(*(table.c[name] < 0 for name in numeric))
    bad = conn.execute(
        sa.select(sa.func.count()).select_from(table).where(table.c.day == day, condition)
    ).scalar_one()
    if bad:
        return CheckOutcome(False, f"{bad} rows of {table.name} hold a negative count", [{"rows": bad}])
    return CheckOutcome(True, f"no negative count in {len(numeric)} columns")
