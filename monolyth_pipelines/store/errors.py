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
