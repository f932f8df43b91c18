"""The mass-tombstone guard: a settings change may not silently empty an account.

A narrowed MIME list or size limit tombstones the rows it now excludes. Past a share of the
account's live rows (``MONOLYTH_MASS_TOMBSTONE_SHARE``, default 50 %) that is more likely a typo
than a decision, so the run refuses, says how many rows it would touch, and waits for the
operator to confirm (``sync --allow-mass-tombstone`` or run config ``allow_mass_tombstone``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from monolyth_pipelines.google.errors import ErrorCode, SyncError
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store.scope import count_out_of_scope


def mass_tombstone_refusal(would: int, live: int, limits: DriveLimits, changed: Sequence[str]) -> str | None:
    """The refusal message when tombstoning ``would`` of ``live`` rows needs confirmation, else None."""
    if limits.allow_mass_tombstone or live == 0 or would <= limits.mass_tombstone_share * live:
        return None
    return (
        f"the settings change ({', '.join(changed) or 'limits'}) would tombstone {would} of the "
        f"account's {live} live rows ({100 * would / live:.0f}%), more than "
        f"MONOLYTH_MASS_TOMBSTONE_SHARE={limits.mass_tombstone_share:g}; nothing was changed. "
        "If this is intended, run `sync --allow-mass-tombstone` (run config: allow_mass_tombstone: true)"
    )


def refuse_mass_tombstone(
    conn: sa.Connection, account_id: uuid.UUID, limits: DriveLimits, changed: Sequence[str]
) -> None:
    """Raise ``bad_config`` before tombstoning too much of the account; the caller's transaction
    rolls back, so the refused run changes no row and no cursor."""
    would, live = count_out_of_scope(
        conn,
        account_id,
        supported_mimes=limits.supported_mime_types,
        max_size=limits.max_file_size_bytes,
        drop_shared_drives=not limits.include_shared_drives,
    )
    message = mass_tombstone_refusal(would, live, limits, changed)
    if message is not None:
        raise SyncError(ErrorCode.BAD_CONFIG, message)
