from __future__ import annotations

import dagster as dg

from monolyth_pipelines.definitions import build_definitions, defs


def test_the_code_location_loads_with_the_drive_asset_and_its_check() -> None:
    dg.Definitions.validate_loadable(defs)
    repo = build_definitions().get_repository_def()
    drive = repo.assets_defs_by_key[dg.AssetKey("google_drive_files")]
    assert drive.partitions_def is not None
    assert {spec.name for spec in drive.check_specs} == {"sync_completeness"}
    assert {"db", "google"} <= set(repo.get_top_level_resources())


def test_loading_the_definitions_imports_neither_pandas_nor_matplotlib() -> None:
    # Every run process loads the definitions; only an Insights run needs pandas and matplotlib
    # (~0.8 s of CPU to import), so a Drive sync must not pay for them.
    import subprocess
    import sys

    code = (
        "import sys, monolyth_pipelines.definitions; "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
