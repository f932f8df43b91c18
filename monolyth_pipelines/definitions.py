"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from __future__ import annotations

import dagster as dg

from monolyth_pipelines.defs.drive import google_drive_files
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[google_drive_files],
        resources={"db": DatabaseResource(), "google": GoogleApiResource()},
    )


defs = build_definitions()
