"""Which daily partitions need (re)building now: the rules behind the insights sensor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

from monolyth_pipelines.store.insights import day_bounds

# Today's partition waits for running connector jobs to finish, but never longer than this.
MAX_WAIT_FOR_RUNS = timedelta(minutes=30)
# Late runs (a retried or reaped job, a run across midnight) still land this far back.
LOOKBACK_DAYS = 7


def days_to_check(now: datetime) -> list[date]:
    today = now.date()
    return [today - timedelta(days=n) for n in range(LOOKBACK_DAYS - 1, -1, -1)]


def stale_days(
    now: datetime,
    last_built: Mapping[date, datetime | None],
    last_change: Mapping[date, datetime | None],
    jobs_running: int,
) -> list[date]:
    """Days whose partition is missing or older than its inputs, oldest first.

    A day is rebuilt when it was never built (today and yesterday always; earlier days when
    they hold data), when a job or event of that day changed after its last build, and once
    after the day ended (its end-of-day figures are final only then). Today waits while
    connector jobs are running, up to ``MAX_WAIT_FOR_RUNS`` after its last change.
    """
    today = now.date()
    stale = []
    for day in days_to_check(now):
        built, changed = last_built.get(day), last_change.get(day)
        end = day_bounds(day)[1]
        if built is None:
            due = changed is not None or day >= today - timedelta(days=1)
        else:
            due = (changed is not None and changed > built) or (now >= end > built)
        if not due:
            continue
        if day == today and jobs_running and changed is not None and now - changed < MAX_WAIT_FOR_RUNS:
            continue
        stale.append(day)
    return stale
