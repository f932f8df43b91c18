"""The Google Drive asset, built by the factory from its registry entry (kept for its import path)."""

from monolyth_pipelines import providers
from monolyth_pipelines.defs.factory import build_asset

google_drive_files = build_asset(providers.GOOGLE_DRIVE)
