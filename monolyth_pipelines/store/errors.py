"""Errors the store raises before anything reaches the database."""

from __future__ import annotations


class InvalidRecordError(ValueError):
    """A row failed validation; ``field`` names the offending column, ``index`` the row in its batch."""

    def __init__(self, field: str, problem: str, index: int | None = None) -> None:
        where = f" (row {index} of the batch)" if index is not None else ""
        super().__init__(f"{field}: {problem}{where}; nothing of this batch was written")
        self.field = field
        self.index = index


class JobConflictError(RuntimeError):
    """Another pending or running job already holds this account and kind."""


class JobBusyError(JobConflictError):
    """The account's job is running under another run; says which, and since when it is quiet."""

    def __init__(self, job_id: object, run_id: str | None, last_seen: object) -> None:
        super().__init__(f"job {job_id} is already running in run {run_id}")
        self.job_id = job_id
        self.run_id = run_id
        self.last_seen = last_seen


class JobLostError(RuntimeError):
    """This run no longer holds its job (taken over or closed): it must stop writing."""
