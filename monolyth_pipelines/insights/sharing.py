"""``insights_sharing_daily``: per day (UTC) and Drive account, live documents by visibility class
at the end of the day, and the day's sharing changes; its check; the ``--sharing`` report.

A day is rebuilt on its own in one transaction, as the other Insights tables are.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from monolyth_pipelines.domain.permissions import EXTERNAL, OPEN, VISIBILITY_ORDER
from monolyth_pipelines.insights.checks import CheckOutcome
from monolyth_pipelines.insights.frames import records
from monolyth_pipelines.store import insights as store
from monolyth_pipelines.store import insights_sharing as sql
from monolyth_pipelines.store.schema import (
    FileEventKind,
    insights_account_usage_daily,
    insights_sharing_daily,
)
from monolyth_pipelines.store.timeutil import utcnow

CLASSES = [v.value for v in VISIBILITY_ORDER] + [sql.UNCLASSIFIED]
_COLUMNS = [c.name for c in insights_sharing_daily.c]


def classes_at(now: pd.DataFrame, change_since: pd.DataFrame) -> pd.DataFrame:
    """Documents per (account_id, visibility) at a past moment: now plus how far each moved."""
    both = pd.concat([now.rename(columns={"documents": "n"}), change_since.rename(columns={"delta": "n"})])
    if both.empty:
        return pd.DataFrame(columns=["account_id", "visibility", "documents"])
    out = both.groupby(["account_id", "visibility"], as_index=False)["n"].sum()
    return out.rename(columns={"n": "documents"})


def sharing_daily(
    accounts: pd.DataFrame, classes: pd.DataFrame, events: pd.DataFrame, day: date, built_at: datetime
) -> pd.DataFrame:
    """One row per Drive account that existed by the day's end."""
    drive = accounts[accounts["provider"] == sql.DRIVE] if not accounts.empty else accounts
    if drive.empty:
        return pd.DataFrame(columns=_COLUMNS)
    out = drive.set_index("account_id")[["provider"]].copy()
    wide = (
        classes.pivot_table(index="account_id", columns="visibility", values="documents", aggfunc="sum")
        if not classes.empty
        else pd.DataFrame()
    )
    for name in CLASSES:
        column = wide[name] if name in wide else pd.Series(dtype="int64")
        out[name] = column.reindex(out.index).fillna(0)
    out["live_documents"] = out[CLASSES].sum(axis=1)
    external, opened = {v.value for v in EXTERNAL}, {v.value for v in OPEN}
    if events.empty:
        events = pd.DataFrame(columns=["account_id", "event", "old_class", "new_class"])
    shared = events["event"] == FileEventKind.SHARED.value
    flags = pd.DataFrame(
        {
            "account_id": events["account_id"],
            "newly_shared_external": shared
            & events["new_class"].isin(external)
            & ~events["old_class"].isin(external),
            "newly_public": shared & events["new_class"].isin(opened) & ~events["old_class"].isin(opened),
            "unshared": events["event"] == FileEventKind.UNSHARED.value,
        }
    )
    counts = flags.groupby("account_id")[["newly_shared_external", "newly_public", "unshared"]].sum()
    for name in ("newly_shared_external", "newly_public", "unshared"):
        out[name] = counts[name].reindex(out.index).fillna(0) if name in counts else 0
    numbers = ["live_documents", *CLASSES, "newly_shared_external", "newly_public", "unshared"]
    out[numbers] = out[numbers].astype("int64")
    out["day"] = day
    out["built_at"] = built_at
    return out.reset_index()[_COLUMNS]


def compute_day(conn: sa.Connection, day: date, now: datetime | None = None) -> pd.DataFrame:
    now = now or utcnow()
    start, end = store.day_bounds(day)
    as_of = min(end, now)
    classes = classes_at(sql.classes_now(conn), sql.class_change_since(conn, as_of))
    events = sql.sharing_events_of_day(conn, start, end)
    return sharing_daily(store.accounts_by(conn, end), classes, events, day, now)


def build_day(engine: sa.Engine, day: date, now: datetime | None = None) -> pd.DataFrame:
    """Compute the day and replace its rows, in one transaction."""
    with engine.begin() as conn:
        frame = compute_day(conn, day, now)
        store.replace_day(conn, insights_sharing_daily, day, records(frame))
    return frame


def classes_add_up(conn: sa.Connection, day: date, today: date) -> CheckOutcome:
    """Each account's classes add up to its live documents: connector_files' live Drive rows
    for the current day, the same day's ``live_items`` of insights_account_usage_daily otherwise
    (two rewinds through the events that must agree)."""
    table = store.read_days(conn, insights_sharing_daily, day, day)
    if day == today:
        expected = {a: n for a, n in store.live_items_now(conn).items() if a in set(table["account_id"])}
        source = "connector_files"
    else:
        usage = store.read_days(conn, insights_account_usage_daily, day, day, sql.DRIVE)
        expected = {row.account_id: int(row.live_items) for row in usage.itertuples(index=False)}
        source = "insights_account_usage_daily"
    mismatches = []
    for row in table.itertuples(index=False):
        classes = sum(int(getattr(row, name)) for name in CLASSES)
        wanted = expected.get(row.account_id, 0)
        if classes != int(row.live_documents) or classes != wanted:
            mismatches.append(
                {"account_id": str(row.account_id), "classes": classes, "live": wanted, "source": source}
            )
    if mismatches:
        return CheckOutcome(
            False, f"{len(mismatches)} accounts' classes do not add up to their live documents", mismatches
        )
    return CheckOutcome(True, f"classes add up to the live documents ({source}) for {len(table)} accounts")


def report(conn: sa.Connection, *, today: date, days: int, provider: str | None = None) -> str:
    """``insights show --sharing``: documents that became visible outside the organisation."""
    first = today - timedelta(days=days - 1)
    since, _ = store.day_bounds(first)
    found = sql.became_external(conn, since, provider)
    lines = [f"Documents that became visible outside the organisation, {first} .. {today}:"]
    if found.empty:
        return "\n".join([*lines, "  (none)"])
    found = found.assign(
        change=found["old_class"].fillna("?") + " -> " + found["new_class"],
        gained=found["gained"].map(_who),
        observed_at=found["observed_at"].map(lambda t: pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")),
    )
    columns = ["observed_at", "account_id", "title", "external_id", "change", "gained"]
    return "\n".join([*lines, found[columns].to_string(index=False)])


def _who(gained: object) -> str:
    if not isinstance(gained, list):
        return ""
    names = []
    for grant in gained:
        if not isinstance(grant, dict):
            continue
        who = grant.get("email") or grant.get("domain") or grant.get("type")
        names.append(f"{who} ({grant.get('role')})")
    return ", ".join(names)
