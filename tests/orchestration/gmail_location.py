"""The code location as a deployment with MONOLYTH_FEATURE_FLAGS=int_gmail loads it.

A module of its own because ``monolyth_pipelines.definitions.defs`` is built once per process,
when first imported; the test that uses this sets the flag before the import.
"""

from monolyth_pipelines.definitions import build_definitions

defs = build_definitions()
