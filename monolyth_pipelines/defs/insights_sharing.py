"""The ``insights_sharing_daily`` asset and its check, beside the other Insights tables (same
group, partitions and job, so ``insights_job``, the refresh sensor and ``insights build`` cover it).

No `from __future__ import annotations` here: Dagster reads the annotations at runtime.
"""

from datetime import UTC, date, datetime

import dagster as dg

from monolyth_pipelines.defs.insights_results import (
    check_day,
    check_result,
    partitioned_asset_check,
    preview_table,
)
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.store.schema import insights_sharing_daily

SHARING_KEY = dg.AssetKey(insights_sharing_daily.name)
DESCRIPTION = (
    "Per day (UTC) and Drive account: live documents by visibility class at the day's end "
    "(private, shared_internal, domain, shared_external, anyone_with_link, public, unclassified), "
    "documents newly shared externally / publicly and un-shared that day."
)


def build_sharing_asset(
    connector_keys: list[dg.AssetKey], partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    deps = [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in connector_keys]

    @dg.asset(
        key=SHARING_KEY,
        group_name="insights",
        deps=deps,
        kinds={"pandas", "sql"},
        description=DESCRIPTION,
        partitions_def=partitions,
    )
    def insights_sharing(context: dg.AssetExecutionContext, db: DatabaseResource) -> dg.MaterializeResult:
        from monolyth_pipelines.insights import sharing

        day = date.fromisoformat(context.partition_key)
        frame = sharing.build_day(db.engine, day)
        return dg.MaterializeResult(
            metadata={
                "day": day.isoformat(),
                "dagster/row_count": len(frame),
                "preview": preview_table(frame),
            }
        )

    return insights_sharing


def build_sharing_check(partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    @partitioned_asset_check(
        asset=SHARING_KEY,
        partitions_def=partitions,
        description="visibility classes add up to the live documents",
    )
    def sharing_classes_add_up(
        context: dg.AssetCheckExecutionContext, db: DatabaseResource
    ) -> dg.AssetCheckResult:
        from monolyth_pipelines.insights import sharing

        with db.engine.connect() as conn:
            return check_result(sharing.classes_add_up(conn, check_day(context), datetime.now(UTC).date()))

    return sharing_classes_add_up
