"""What the CLI prints for a run that holds no job at its end: refused because the account was
busy (not a failed sync), or stopped because another run took its job over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Distinct from 1 (the sync failed) and 2 (bad command line): the account is busy, try later.
EXIT_BUSY = 3


@dataclass(frozen=True)
class Refusal:
    code: str
    line: str
    exit_status: int


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def refusal_of(result: Any) -> Refusal | None:
    """The refusal a run's step failure carries (``error_code`` metadata of a ``dg.Failure``)."""
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        failure = event.step_failure_data.user_failure_data
        if failure is None:
            continue
        code = str(_value(failure.metadata.get("error_code", "")))
        if code == "account_busy":
            return Refusal(code, failure.description or code, EXIT_BUSY)
        if code == "job_taken_over":
            # The job this run held now belongs to another run: it is that run's to report.
            return Refusal(code, failure.description or code, 1)
    return None
