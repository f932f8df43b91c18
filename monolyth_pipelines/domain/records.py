"""The provider-independent shape of one fetched item, as the store persists it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One row of ``connector_files`` before the store adds ids and timestamps.

    ``meta`` is the normalised provider payload (the spec's JSON shape for the provider); it
    must never hold tokens or other secrets.
    """

    external_id: str
    title: str | None
    mime: str | None
    size: int | None
    modified_at: datetime | None
    url: str | None
    meta: dict[str, Any] = field(default_factory=dict)


class TombstoneReason(StrEnum):
    """Why an item left an account's live set; stored in ``connector_files.deleted_reason``."""

    TRASHED = "trashed"
    DELETED = "deleted"
    ACCESS_LOST = "access_lost"
    UNSUPPORTED_TYPE = "unsupported_type"
    TOO_LARGE = "too_large"
    LEFT_LABEL = "left_label"
    NOT_SEEN_IN_FULL_SYNC = "not_seen_in_full_sync"
    # Excluded by a change of settings (e.g. shared drives switched off).
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class Tombstone:
    external_id: str
    reason: TombstoneReason
