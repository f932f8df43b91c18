"""The ``shared`` / ``unshared`` events of a page's rows, beside their other events.

A stored live row whose permissions or visibility class changed gets one sharing event
(``domain/permissions.sharing_change``: before and after class, who gained and who lost access).
When nothing else a user would notice changed (title, type, size, modified time, link, the rest
of the meta; Drive's ``version`` moves with every sharing change), that event is the row's only
one: a sharing change is not also a ``modified``. New rows and revived rows get only their
``added`` / ``restored``: their class is in the row, and "newly shared" means a change of a
document already known.

Postgres computes it inside the page statement (``pg_ctes``), SQLite in Python (``python_event``);
tests hold the two to the same events.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monolyth_pipelines.domain.permissions import VISIBILITY_ORDER, sharing_change

# Meta keys that move with a sharing change without being one of their own.
SHARING_KEYS = ("permissions", "visibility", "shared", "permissions_complete", "version")
_ROW_FIELDS = ("title", "mime", "size", "modified_at", "url")


def _rest(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (meta or {}).items() if k not in SHARING_KEYS}


def python_event(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], job_id: uuid.UUID | None, now: datetime
) -> tuple[dict[str, Any] | None, bool]:
    """(the sharing event of a written row or None, whether it is the row's only change).

    ``old``: the stored row (``meta_json``, ``deleted_at`` and the row fields), None when new;
    ``new``: the row as written (``file_rows.full_row``)."""
    if old is None or old["deleted_at"] is not None:
        return None, False
    before, after = old.get("meta_json") or {}, new["meta"] or {}
    if "permissions" not in after or "visibility" not in after:
        return None, False
    found = sharing_change(
        before.get("permissions"), before.get("visibility"), after["permissions"], after["visibility"]
    )
    if found is None:
        return None, False
    kind, changes = found
    only = all(old[f] == new[f] for f in _ROW_FIELDS) and _rest(before) == _rest(after)
    event = {
        "account_id": new["account_id"],
        "provider": new["provider"],
        "external_id": new["external_id"],
        "job_id": job_id,
        "event": kind,
        "reason": None,
        "occurred_at": new["modified_at"],
        "observed_at": now,
        "changes": changes,
    }
    return event, only


_RANKS = "ARRAY[" + ", ".join(f"'{v.value}'" for v in VISIBILITY_ORDER) + "]::text[]"
_NOT_SHARING = "ARRAY[" + ", ".join(f"'{k}'" for k in SHARING_KEYS) + "]::text[]"


def _delta(left: str, right: str) -> str:
    """The grantees (permissions without ``inherited``) of ``left`` that ``right`` lacks, in
    order: what ``sharing_change`` lists as gained or lost."""
    return (
        f"(SELECT coalesce(jsonb_agg(x.g ORDER BY x.n), '[]'::jsonb) FROM "
        f"(SELECT e - 'inherited' AS g, n FROM jsonb_array_elements({left}) WITH ORDINALITY AS a(e, n)) x "
        f"WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements({right}) AS b(e) "
        "WHERE b.e - 'inherited' = x.g))"
    )


def pg_ctes() -> str:
    """CTEs to add after ``written`` (which must return ``inserted``), with ``old`` holding the
    stored rows' title, mime, size, modified_at, url, meta_json and deleted_at: ``sharing`` is
    one row per sharing event (``only_sharing``: the row's only change)."""
    return f""", sharing_diff AS MATERIALIZED (
    SELECT w.account_id, w.provider, w.external_id, w.modified_at,
        o.meta_json ->> 'visibility' AS old_v, s.meta_json ->> 'visibility' AS new_v,
        {_delta("s.meta_json -> 'permissions'", "o.meta_json -> 'permissions'")} AS gained,
        {_delta("o.meta_json -> 'permissions'", "s.meta_json -> 'permissions'")} AS lost,
        (o.title IS NOT DISTINCT FROM s.title AND o.mime IS NOT DISTINCT FROM s.mime
         AND o.size IS NOT DISTINCT FROM s.size AND o.modified_at IS NOT DISTINCT FROM s.modified_at
         AND o.url IS NOT DISTINCT FROM s.url
         AND (o.meta_json - {_NOT_SHARING}) = (s.meta_json - {_NOT_SHARING})) AS only_sharing
    FROM written w
    JOIN old o ON o.external_id = w.external_id AND o.deleted_at IS NULL
    JOIN stage s ON s.external_id = w.external_id
    WHERE NOT w.inserted
      AND o.meta_json ? 'permissions' AND o.meta_json ? 'visibility'
      AND s.meta_json ? 'permissions' AND s.meta_json ? 'visibility'
      AND (o.meta_json -> 'permissions' IS DISTINCT FROM s.meta_json -> 'permissions'
           OR o.meta_json -> 'visibility' IS DISTINCT FROM s.meta_json -> 'visibility')
), sharing AS MATERIALIZED (
    SELECT d.*,
        coalesce(array_position({_RANKS}, d.old_v), 0) AS old_rank,
        coalesce(array_position({_RANKS}, d.new_v), 0) AS new_rank
    FROM sharing_diff d
    WHERE d.gained <> '[]'::jsonb OR d.lost <> '[]'::jsonb OR d.old_v IS DISTINCT FROM d.new_v
)"""


def pg_insert(columns: str) -> str:
    """The INSERT of the ``sharing`` CTE's events (``%(job_id)s`` and ``%(now)s`` bound)."""
    return f""", sharing_logged AS (
    INSERT INTO connector_file_events ({columns})
    SELECT x.account_id, x.provider, x.external_id, %(job_id)s,
        CASE WHEN x.new_rank > x.old_rank THEN 'shared'
             WHEN x.new_rank < x.old_rank THEN 'unshared'
             WHEN x.gained <> '[]'::jsonb THEN 'shared' ELSE 'unshared' END,
        NULL, x.modified_at, %(now)s,
        jsonb_build_object('visibility', jsonb_build_object('old', x.old_v, 'new', x.new_v),
                           'gained', x.gained, 'lost', x.lost)
    FROM sharing x
)"""
