"""What the Insights assets and checks report to Dagster: a table preview for the materialisation,
a check result from a domain check's outcome. Shared by every Insights table's asset and check.

No `from __future__ import annotations` here: Dagster reads the annotations at runtime.
"""

import warnings
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg

from monolyth_pipelines.insights import checks

if TYPE_CHECKING:
    # pandas and matplotlib (~0.8 s of CPU to import) load only in a run that builds a day: every
    # process that loads the definitions (each connector run, the code server) would pay it.
    import pandas as pd

PREVIEW_ROWS = 10


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


# Partitioned asset checks are a preview feature in Dagster 1.13; they are what makes a check
# verify the partition just built, so the warning is expected.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)


def check_day(context: dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.op_execution_context.partition_key)
