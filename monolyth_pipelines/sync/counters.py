"""What a run saw and did: lands in meta_json, Dagster metadata and the completed event, and is
read back when a step retry carries on."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# How many skipped ids per reason a job row keeps; the counts are always complete.
SKIPPED_IDS_KEPT = 100


@dataclass
class SyncCounters:
    """What a run saw and did; lands in meta_json, Dagster metadata and the completed event."""

    seen: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0
    tombstoned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_ids: dict[str, list[str]] = field(default_factory=dict)
    pages: int = 0
    retries: int = 0
    database_retries: int = 0
    vault_imported: int = 0
    mode: str = ""  # "full", "incremental", "full_after_invalid_cursor"
    limit_reached: bool = False
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def resumed(cls, meta: dict[str, Any] | None) -> SyncCounters:
        """The counters an earlier attempt of the same run left in the job row (``as_meta``)."""
        c = (meta or {}).get("counters") or {}
        return cls(
            seen=c.get("seen", 0),
            inserted=c.get("inserted", 0),
            updated=c.get("updated", 0),
            unchanged=c.get("unchanged", 0),
            restored=c.get("restored", 0),
            tombstoned=Counter(c.get("tombstoned") or {}),
            skipped=Counter(c.get("skipped") or {}),
            skipped_ids={k: list(v) for k, v in (c.get("skipped_ids") or {}).items()},
            pages=c.get("pages", 0),
            retries=c.get("retries", 0),
            database_retries=c.get("database_retries", 0),
            vault_imported=c.get("vault_imported", 0),
            mode=c.get("mode", ""),
            limit_reached=c.get("limit_reached", False),
            warnings=list(c.get("warnings") or []),
        )

    def skip(self, reason: str, external_id: str) -> None:
        self.skipped[reason] += 1
        kept = self.skipped_ids.setdefault(reason, [])
        if len(kept) < SKIPPED_IDS_KEPT:
            kept.append(external_id)

    def snapshot(self) -> SyncCounters:
        return copy.deepcopy(self)

    def restore(self, snapshot: SyncCounters) -> None:
        """Back to ``snapshot`` in place (every holder of this object sees it): a page whose
        commit failed is written again, and must not be counted twice."""
        self.__dict__.update(copy.deepcopy(snapshot).__dict__)

    @property
    def stored(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_meta(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "seen": self.seen,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "restored": self.restored,
            "tombstoned": dict(self.tombstoned),
            "tombstoned_total": sum(self.tombstoned.values()),
            "skipped": dict(self.skipped),
            "skipped_total": sum(self.skipped.values()),
            "skipped_ids": self.skipped_ids,
            "pages": self.pages,
            "retries": self.retries,
            "database_retries": self.database_retries,
            "vault_imported": self.vault_imported,
            "limit_reached": self.limit_reached,
            "warnings": self.warnings,
        }
