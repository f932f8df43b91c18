"""What the Insights assets and checks report to Dagster: a table preview for the materialisation,
a check result from a domain check's outcome. Shared by every Insights table's asset and check.

No `from __future__ import annotations` here: Dagster reads the annotations at runtime.
"""

import warnings
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

from monolyth_pipelines.insights import checks

if TYPE_CHECKING:
    # pandas and matplotlib (~0.8 s of CPU to import) load only in a run that builds a day: every
    # process that loads the definitions (each connector run, the code server) would pay it.
    import pandas as pd

PREVIEW_ROWS = 10
# The start of the PreviewWarning Dagster 1.13 gives for a partitions_def on an asset check.
PARTITIONED_CHECK_PREVIEW = "Specifying a partitions_def on an AssetCheckSpec"


def preview_table(frame: "pd.DataFrame") -> dg.TableMetadataValue:
    import pandas as pd

    head = frame.head(PREVIEW_ROWS)
    columns = [c for c in head.columns if c != "built_at"]
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {c: "" if pd.isna(v) is True else str(v) for c, v in zip(columns, row, strict=True)}
            )
            for row in head[columns].itertuples(index=False, name=None)
        ],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns]),
    )


def check_result(outcome: checks.CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        description=outcome.description,
        metadata={"mismatches": dg.MetadataValue.json(outcome.mismatches[:20])} if outcome.mismatches else {},
    )


def partitioned_asset_check(
    **kwargs: Any,
) -> Callable[[Callable[..., dg.AssetCheckResult]], dg.AssetChecksDefinition]:
    """``dg.asset_check(partitions_def=..., **kwargs)`` without its PreviewWarning.

    Partitioned asset checks are a preview feature in Dagster 1.13, used deliberately: they are
    what makes a check verify the partition just built. Only that one warning, and only while this
    decorator builds the check, is silenced; any other preview, beta or deprecation warning still
    reaches the caller (and fails the tests). A process-wide filter would hide the next preview
    feature too, and pytest resets it per test anyway.
    """
    if kwargs.get("partitions_def") is None:
        raise ValueError("partitioned_asset_check needs a partitions_def")

    def decorate(fn: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=PARTITIONED_CHECK_PREVIEW, category=dg.PreviewWarning)
            return dg.asset_check(**kwargs)(fn)

    return decorate


def check_day(context: dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.op_execution_context.partition_key)
