"""The Gmail asset, built by the factory from its registry entry (kept for its import path).

Definitions include it only with ``int_gmail`` (``local_run.assets_by_provider``).
"""

from monolyth_pipelines import providers
from monolyth_pipelines.defs.factory import build_asset

gmail_messages = build_asset(providers.GMAIL)
