"""The mass-tombstone guard: no run may silently empty an account.

A narrowed MIME list or size limit tombstones the rows it now excludes; a reconciling full pull
(a rejected Drive change token, an expired Gmail history, a Gmail label change, a first listing
that comes back far smaller than the rows stored) tombstones every live row it could not find
again. Past a share of the account's live rows (``MONOLYTH_MASS_TOMBSTONE_SHARE``, default 50 %)
that is more likely a typo or a broken listing than a decision, so the run refuses, says how many
rows it would touch, and waits for the operator to confirm (``sync --allow-mass-tombstone`` or
run config ``allow_mass_tombstone``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from monolyth_pipelines.google.errors import ErrorCode, SyncError
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store.scope import count_out_of_scope

CONFIRM = "If this is intended, run `sync --allow-mass-tombstone` (run config: allow_mass_tombstone: true)"


class GuardedLimits(Protocol):
    mass_tombstone_share: float
    allow_mass_tombstone: bool


@dataclass(frozen=True)
class MassTombstoneGuard:
    """The share a run may tombstone unconfirmed, and whether this run confirmed more."""

    share: float = 0.5
    allowed: bool = False

    @classmethod
    def of(cls, limits: GuardedLimits) -> MassTombstoneGuard:
        return cls(limits.mass_tombstone_share, limits.allow_mass_tombstone)

    def exceeded(self, would: int, live: int) -> bool:
        return not self.allowed and live > 0 and would > self.share * live


class MassTombstoneRefused(SyncError):
    """``bad_config``: the run would tombstone more than the share; nothing was tombstoned.

    ``meta()`` goes into the failed job's ``meta_json.mass_tombstone_refused``, so the job row
    says how many rows the run would have tombstoned.
    """

    def __init__(self, what: str, would: int, live: int, guard: MassTombstoneGuard) -> None:
        super().__init__(
            ErrorCode.BAD_CONFIG,
            f"{what} would tombstone {would} of the account's {live} live rows "
            f"({100 * would / live:.0f}%), more than MONOLYTH_MASS_TOMBSTONE_SHARE={guard.share:g}; "
            f"nothing was tombstoned. {CONFIRM}",
        )
        self.what = what
        self.would = would
        self.live = live
        self.share = guard.share

    def meta(self) -> dict[str, Any]:
        return {"would_tombstone": self.would, "live": self.live, "share": self.share, "what": self.what}


def check_mass_tombstone(what: str, would: int, live: int, guard: MassTombstoneGuard) -> None:
    """Raise ``MassTombstoneRefused`` when tombstoning ``would`` of ``live`` rows needs confirmation."""
    if guard.exceeded(would, live):
        raise MassTombstoneRefused(what, would, live, guard)


def mass_tombstone_refusal(would: int, live: int, limits: DriveLimits, changed: Sequence[str]) -> str | None:
    """The refusal message when tombstoning ``would`` of ``live`` rows needs confirmation, else None."""
    guard = MassTombstoneGuard.of(limits)
    if not guard.exceeded(would, live):
        return None
    return MassTombstoneRefused(_settings_change(changed), would, live, guard).message


def _settings_change(changed: Sequence[str]) -> str:
    return f"the settings change ({', '.join(changed) or 'limits'})"


def refuse_mass_tombstone(
    conn: sa.Connection, account_id: uuid.UUID, limits: DriveLimits, changed: Sequence[str]
) -> None:
    """Raise before tombstoning too much of the account; the caller's transaction rolls back,
    so the refused run changes no row and no cursor."""
    would, live = count_out_of_scope(
        conn,
        account_id,
        supported_mimes=limits.supported_mime_types,
        max_size=limits.max_file_size_bytes,
        drop_shared_drives=not limits.include_shared_drives,
    )
    check_mass_tombstone(_settings_change(changed), would, live, MassTombstoneGuard.of(limits))
