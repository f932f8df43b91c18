"""How a run's refusals and fencing read: an account busy with another run, a run whose job was
taken over, a setting that is invalid. None of them is a failed sync of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monolyth_pipelines.google.errors import ErrorCode, SyncError, classify_exception
from monolyth_pipelines.settings_checks import ConfigError
from monolyth_pipelines.store.errors import JobBusyError, JobLostError
from monolyth_pipelines.store.outage import database_error


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    if moment.tzinfo is None:  # SQLite hands timestamps back naive; they are stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


class AccountBusy(SyncError):
    """Another live run holds the account's job: a refusal, not a failed sync (nothing is written)."""

    def __init__(self, busy: JobBusyError, stale_after: timedelta) -> None:
        last_seen = busy.last_seen if isinstance(busy.last_seen, datetime) else None
        takeover = last_seen + stale_after if last_seen else None
        super().__init__(
            ErrorCode.ACCOUNT_BUSY,
            f"account busy: job {busy.job_id} is running in run {busy.run_id}, last seen alive "
            f"{_iso(last_seen)}; it is taken over if that run shows no sign of life until "
            f"{_iso(takeover)} (MONOLYTH_STALE_JOB_SECONDS={stale_after.total_seconds():g})",
        )
        self.job_id = busy.job_id
        self.holder_run_id = busy.run_id
        self.last_seen = _iso(last_seen)
        self.takeover_at = _iso(takeover)


def classify_run_error(exc: BaseException) -> SyncError:
    """Any exception of a run as a ``SyncError``: settings, fencing and database outages first,
    then Google's rules."""
    if isinstance(exc, ConfigError):
        return SyncError(ErrorCode.BAD_CONFIG, str(exc))
    if isinstance(exc, JobLostError):
        return SyncError(ErrorCode.JOB_TAKEN_OVER, str(exc))
    return database_error(exc) or classify_exception(exc)
