"""``insights show``: run outcomes, busiest accounts and busiest documents, as plain text."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from monolyth_pipelines.store import insights as store
from monolyth_pipelines.store.schema import (
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)

TOP = 10


def _table(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False) if not frame.empty else "  (nothing yet)"


def report(conn: sa.Connection, *, today: date, days: int, provider: str | None = None) -> str:
    first = today - timedelta(days=days - 1)
    runs = store.read_days(conn, insights_sync_runs_daily, first, today, provider)
    usage = store.read_days(conn, insights_account_usage_daily, first, today, provider)
    docs = store.read_days(conn, insights_document_activity_daily, first, today, provider)
    scope = f"{first} .. {today}" + (f", provider {provider}" if provider else "")
    parts = [f"Insights for {scope}", "", "Run outcomes per day:"]
    if not runs.empty:
        runs = runs.assign(failure_rate=runs["failure_rate"].map(lambda r: "" if pd.isna(r) else f"{r:.0%}"))
        runs = runs[
            [
                "day",
                "provider",
                "kind",
                "runs_started",
                "runs_completed",
                "runs_failed",
                "runs_refused",
                "failure_rate",
            ]
        ]
        runs = runs.rename(
            columns={
                "runs_started": "started",
                "runs_completed": "completed",
                "runs_failed": "failed",
                "runs_refused": "refused",
            }
        )
    parts += [_table(runs), "", f"Busiest accounts (items changed, top {TOP}):"]
    if not usage.empty:
        usage = usage.assign(changed=usage["items_added"] + usage["items_modified"] + usage["items_removed"])
        latest = (
            usage.sort_values("day").groupby("account_id")[["live_items", "minutes_since_success"]].last()
        )
        usage = (
            usage.groupby(["account_id", "provider"])[["changed", "runs_completed", "runs_failed"]]
            .sum()
            .join(latest, on="account_id")
            .reset_index()
            .sort_values(["changed", "runs_completed"], ascending=False)
            .head(TOP)
        )
    parts += [_table(usage), "", f"Busiest documents (changes, top {TOP}):"]
    if not docs.empty:
        docs = (
            docs.groupby(["provider", "external_id"])
            .agg(title=("title", "last"), changes=("changes", "sum"), days=("day", "nunique"))
            .reset_index()
            .sort_values(["changes", "external_id"], ascending=[False, True])
            .head(TOP)
        )
    parts.append(_table(docs))
    return "\n".join(parts)
