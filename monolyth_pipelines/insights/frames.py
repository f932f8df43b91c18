"""The day's runs and accounts rows from the day's input frames: pure pandas, no I/O.

Inputs are the frames ``store.insights`` reads (one day of jobs, per-account aggregates);
outputs have exactly the columns of their ``insights_*_daily`` tables. The per-document table
is aggregated in SQL (``store.insights_aggregates``): it can hold millions of rows a day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from monolyth_pipelines.store.schema import (
    JobStatus,
    insights_account_usage_daily,
    insights_sync_runs_daily,
)

_ERROR_CODE = re.compile(r"^([a-z_]+):")
# A failed job with one of these codes was refused, not a sync that failed: invalid settings or
# a mass tombstone waiting for confirmation (bad_config), a disconnect closing the account's jobs.
REFUSAL_CODES = frozenset({"bad_config", "account_disconnected"})
_COUNTS = ("items_added", "items_modified", "items_removed")


def _empty(table: Any) -> pd.DataFrame:
    return pd.DataFrame(columns=[c.name for c in table.c])


def error_code(last_error: str | None) -> str:
    """Runs record ``last_error`` as "<code>: <message>"."""
    match = _ERROR_CODE.match(last_error) if isinstance(last_error, str) else None
    return match.group(1) if match else "unknown"


def _in_day(series: pd.Series, start: datetime, end: datetime) -> pd.Series:
    times = pd.to_datetime(series, utc=True)
    return (times >= start) & (times < end)


def job_facts(jobs: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """One row per job: did it start / complete / fail / get refused in the day, and its counters.

    Refused: closed failed without a sync of its own, i.e. never started (a pending row closed:
    the account was not connected, or disconnected) or failed with a ``REFUSAL_CODES`` code.
    """
    facts = jobs[["id", "account_id", "provider", "kind", "status"]].copy()
    facts["started"] = _in_day(jobs["started_at"], start, end)
    finished = _in_day(jobs["finished_at"], start, end)
    facts["error_code"] = jobs["last_error"].map(error_code)
    closed_failed = finished & (jobs["status"] == JobStatus.FAILED.value)
    refused = jobs["started_at"].isna() | facts["error_code"].isin(REFUSAL_CODES)
    facts["completed"] = finished & (jobs["status"] == JobStatus.COMPLETED.value)
    facts["failed"] = closed_failed & ~refused
    facts["refused"] = closed_failed & refused
    meta = jobs["meta_json"].map(lambda m: m if isinstance(m, dict) else {})
    counters = meta.map(lambda m: m.get("counters") or {})
    for column, key in (
        ("seen", "seen"),
        ("inserted", "inserted"),
        ("updated", "updated"),
        ("tombstoned", "tombstoned_total"),
        ("vault_imported", "vault_imported"),
    ):
        facts[column] = counters.map(lambda c, key=key: int(c.get(key) or 0))
    facts["api_calls"] = meta.map(lambda m: int(m.get("api_calls") or 0))
    elapsed = pd.to_datetime(jobs["finished_at"], utc=True) - pd.to_datetime(jobs["started_at"], utc=True)
    fallback = (elapsed.dt.total_seconds() * 1000).round()
    facts["duration_ms"] = meta.map(lambda m: m.get("duration_ms")).astype("Float64").fillna(fallback)
    return facts


def live_at(live_now: pd.DataFrame, change_since: pd.DataFrame) -> pd.DataFrame:
    """Live items and bytes per account at a past moment: today's figures plus how far they moved
    since (``store.insights.live_change_since``)."""
    out = live_now.merge(change_since, on="account_id", how="outer").fillna(0)
    out["live_items"] = (out["live_items"] + out["items_delta"]).astype("int64")
    out["live_bytes"] = (out["live_bytes"] + out["bytes_delta"]).astype("int64")
    return out[["account_id", "live_items", "live_bytes"]]


def sync_runs_daily(
    jobs: pd.DataFrame, day: date, start: datetime, end: datetime, built_at: datetime
) -> pd.DataFrame:
    if jobs.empty:
        return _empty(insights_sync_runs_daily)
    facts = job_facts(jobs, start, end)
    rows = []
    for (provider, kind), group in facts.groupby(["provider", "kind"], sort=True):
        done = group[group["completed"] | group["failed"]]
        durations = done["duration_ms"].dropna().astype(float)
        finished = len(done)
        failed = int(group["failed"].sum())
        rows.append(
            {
                "day": day,
                "provider": provider,
                "kind": kind,
                "runs_started": int(group["started"].sum()),
                "runs_completed": int(group["completed"].sum()),
                "runs_failed": failed,
                "runs_refused": int(group["refused"].sum()),
                "failure_rate": failed / finished if finished else None,
                "duration_p50_ms": round(float(durations.quantile(0.5))) if len(durations) else None,
                "duration_p95_ms": round(float(durations.quantile(0.95))) if len(durations) else None,
                "duration_max_ms": int(durations.max()) if len(durations) else None,
                "items_seen": int(done["seen"].sum()),
                "items_inserted": int(done["inserted"].sum()),
                "items_updated": int(done["updated"].sum()),
                "items_tombstoned": int(done["tombstoned"].sum()),
                "api_calls": int(done["api_calls"].sum()),
                "failures_by_code": {
                    str(k): int(v)
                    for k, v in group[group["failed"]]["error_code"].value_counts().sort_index().items()
                },
                "built_at": built_at,
            }
        )
    return pd.DataFrame(rows, columns=[c.name for c in insights_sync_runs_daily.c])


def account_usage_daily(
    *,
    accounts: pd.DataFrame,
    jobs: pd.DataFrame,
    event_counts: pd.DataFrame,
    live: pd.DataFrame,
    last_success: pd.DataFrame,
    day: date,
    start: datetime,
    end: datetime,
    as_of: datetime,
    built_at: datetime,
) -> pd.DataFrame:
    """One row per account that existed by the day's end (``as_of``: the end, or now for today)."""
    if accounts.empty:
        return _empty(insights_account_usage_daily)
    out = accounts.set_index("account_id")[["owner_id", "provider"]].copy()
    if not jobs.empty:
        facts = job_facts(jobs, start, end)
        runs = facts.groupby("account_id")[["started", "completed", "failed", "refused"]].sum()
        vault = facts[facts["completed"] | facts["failed"]].groupby("account_id")["vault_imported"].sum()
    else:
        runs = pd.DataFrame(columns=["started", "completed", "failed", "refused"])
        vault = pd.Series(dtype="int64")
    for column in ("started", "completed", "failed", "refused"):
        out[f"runs_{column}"] = runs[column].reindex(out.index).fillna(0)
    live_idx = live.set_index("account_id")
    out["live_items"] = live_idx["live_items"].reindex(out.index).fillna(0)
    out["live_bytes"] = live_idx["live_bytes"].reindex(out.index).fillna(0)
    kinds = (
        event_counts.set_index("account_id")
        if not event_counts.empty
        else pd.DataFrame(columns=list(_COUNTS), index=pd.Index([], name="account_id"))
    )
    for column in _COUNTS:
        out[column] = kinds[column].reindex(out.index).fillna(0)
    out["vault_imports"] = vault.reindex(out.index).fillna(0)
    success = last_success.set_index("account_id")["last_success_at"].reindex(out.index)
    minutes = (pd.Timestamp(as_of) - pd.to_datetime(success, utc=True)).dt.total_seconds() // 60
    out["minutes_since_success"] = minutes.astype("Int64")
    out["day"] = day
    out["built_at"] = built_at
    out = out.reset_index()
    counts = [
        c.name for c in insights_account_usage_daily.c if c.name.startswith(("runs_", "items_", "live_"))
    ]
    out[[*counts, "vault_imports"]] = out[[*counts, "vault_imports"]].astype("int64")
    return out[[c.name for c in insights_account_usage_daily.c]]


def records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Rows with plain Python values (no numpy scalars, NaN/NaT as None) for the database driver."""
    columns = list(frame.columns)
    for values in frame.itertuples(index=False, name=None):
        yield {column: _plain(value) for column, value in zip(columns, values, strict=True)}


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value
