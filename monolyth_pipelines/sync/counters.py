"""What a run saw and did: one dataclass, serialised from its own fields into meta_json, the
Dagster metadata and the completed event, and read back when a step retry carries on."""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# How many skipped ids per reason a job row keeps; the counts are always complete.
SKIPPED_IDS_KEPT = 100


@dataclass
class SyncCounters:
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
    database_retries: int = 0  # transactions written again after a lost database connection
    vault_imported: int = 0
    mode: str = ""  # "full", "incremental", "full_after_invalid_cursor", "full_after_settings_change"
    limit_reached: bool = False
    warnings: list[str] = field(default_factory=list)
    incomplete_search: int = 0  # listing pages Drive answered with incompleteSearch: true
    permission_lookups: int = 0  # Drive permissions.list calls (shared-drive items only)
    permissions_unavailable: int = 0  # stored without permissions: Google would not list them
    reconcile_lookups: int = 0  # Gmail threads a reconcile looked up by id (not in the listed window)

    @classmethod
    def resumed(cls, meta: dict[str, Any] | None) -> SyncCounters:
        """The counters an earlier attempt of the same run left in the job row (``as_meta``)."""
        saved = (meta or {}).get("counters") or {}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = saved.get(f.name)
            if value is None:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if isinstance(default, Counter):
                value = Counter(value)
            elif isinstance(default, dict):
                value = {k: list(v) for k, v in value.items()}
            elif isinstance(default, list):
                value = list(value)
            values[f.name] = value
        return cls(**values)

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
        meta = {
            f.name: dict(v) if isinstance(v := getattr(self, f.name), Counter) else v
            for f in dataclasses.fields(self)
        }
        meta["tombstoned_total"] = sum(self.tombstoned.values())
        meta["skipped_total"] = sum(self.skipped.values())
        return meta
