"""An emulator of Google Drive v3, Gmail v1 and the OAuth token endpoint over real HTTP.

For tests, the demo and benchmarks: the real google-api-python-client talks to it exactly as it
would talk to Google. See ``docs/emulator.md``.
"""

from monolyth_pipelines.emulator.emulator import AccountState, EmulatedAccount, GoogleEmulator
from monolyth_pipelines.emulator.faults import DEFAULT_GMAIL_COSTS, FaultRule, Faults, Quotas
from monolyth_pipelines.emulator.mime import AttachmentSpec
from monolyth_pipelines.emulator.oauth import DEFAULT_SCOPES

__all__ = [
    "DEFAULT_GMAIL_COSTS",
    "DEFAULT_SCOPES",
    "AccountState",
    "AttachmentSpec",
    "EmulatedAccount",
    "FaultRule",
    "Faults",
    "GoogleEmulator",
    "Quotas",
]
