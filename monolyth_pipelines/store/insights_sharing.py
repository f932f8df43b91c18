"""The SQL side of ``insights_sharing_daily``: Drive documents by visibility class (now, and how
far a past day's end differs), the day's sharing events, and the list behind
``insights show --sharing``.

Like the live counts of ``store.insights``, the classes at a past day's end are today's rows
rewound through the events since (set-based here: old days read many events).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from monolyth_pipelines.domain.permissions import EXTERNAL
from monolyth_pipelines.store.insights import _frame, _in, rewind_since
from monolyth_pipelines.store.schema import FileEventKind, Provider, connector_file_events, connector_files

DRIVE = Provider.GOOGLE_DRIVE.value
SHARING_EVENTS = (FileEventKind.SHARED.value, FileEventKind.UNSHARED.value)
UNCLASSIFIED = "unclassified"


def _visibility(meta: Any) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(meta["visibility"].as_string(), UNCLASSIFIED)


def classes_now(conn: sa.Connection) -> pd.DataFrame:
    """(account_id, visibility, documents): live Drive rows as connector_files holds them now."""
    f = connector_files
    cls = _visibility(f.c.meta_json).label("visibility")
    query = (
        sa.select(f.c.account_id, cls, sa.func.count().label("documents"))
        .where(f.c.deleted_at.is_(None), f.c.provider == DRIVE)
        .group_by(f.c.account_id, cls)
    )
    return _frame(conn.execute(query))


def class_change_since(conn: sa.Connection, since: datetime) -> pd.DataFrame:
    """(account_id, visibility, delta): how many more documents each class held at ``since``
    than now. A document's state then: live unless its first event since brought it in; its
    class the ``old`` class of its first sharing event since, else its class now."""
    e = connector_file_events
    r = rewind_since(
        since,
        details=(e.c.changes[("visibility", "old")].as_string().label("old_class"),),
        detail_where=e.c.event.in_(SHARING_EVENTS),
        provider=DRIVE,
    )
    class_now = _visibility(connector_files.c.meta_json)
    class_then = sa.case((r.detail.c.account_id.is_not(None), r.detail.c.old_class), else_=class_now)
    rows = (
        sa.select(
            r.first.c.account_id,
            r.live_then.label("live_then"),
            class_then.label("class_then"),
            r.live_now.label("live_now"),
            class_now.label("class_now"),
            sa.func.count().label("documents"),
        )
        .select_from(r.source)
        .where(r.first.c.n == 1)
        .group_by(r.first.c.account_id, r.live_then, class_then, r.live_now, class_now)
    )
    found = _frame(conn.execute(rows))
    if found.empty:
        return pd.DataFrame(columns=["account_id", "visibility", "delta"])
    then = found.assign(visibility=found["class_then"], delta=found["documents"] * found["live_then"])
    now = found.assign(visibility=found["class_now"], delta=-found["documents"] * found["live_now"])
    both = pd.concat([then, now])[["account_id", "visibility", "delta"]]
    return both.groupby(["account_id", "visibility"], as_index=False)["delta"].sum()


def sharing_events_of_day(conn: sa.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """(account_id, event, old_class, new_class) of the day's shared / unshared events."""
    e = connector_file_events
    query = sa.select(
        e.c.account_id,
        e.c.event,
        e.c.changes[("visibility", "old")].as_string().label("old_class"),
        e.c.changes[("visibility", "new")].as_string().label("new_class"),
    ).where(_in(e.c.observed_at, start, end), e.c.event.in_(SHARING_EVENTS))
    return _frame(conn.execute(query))


def became_external(conn: sa.Connection, since: datetime, provider: str | None = None) -> pd.DataFrame:
    """Documents that became visible outside the organisation since ``since``: each ``shared``
    event whose new class is external and whose old one was not, newest first."""
    e, f = connector_file_events, connector_files
    old_class = e.c.changes[("visibility", "old")].as_string()
    new_class = e.c.changes[("visibility", "new")].as_string()
    external = sorted(v.value for v in EXTERNAL)
    query = (
        sa.select(
            e.c.observed_at,
            e.c.account_id,
            e.c.external_id,
            f.c.title,
            old_class.label("old_class"),
            new_class.label("new_class"),
            e.c.changes["gained"].label("gained"),
            f.c.url,
        )
        .select_from(
            e.outerjoin(f, sa.and_(f.c.account_id == e.c.account_id, f.c.external_id == e.c.external_id))
        )
        .where(
            e.c.observed_at >= since,
            e.c.event == FileEventKind.SHARED.value,
            new_class.in_(external),
            sa.or_(old_class.is_(None), old_class.not_in(external)),
        )
        .order_by(e.c.observed_at.desc(), e.c.id.desc())
    )
    if provider is not None:
        query = query.where(e.c.provider == provider)
    return _frame(conn.execute(query))
