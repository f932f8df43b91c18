"""The account a run syncs, as ``SyncRun.start`` loads it once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class AccountContext:
    """The account a run syncs, loaded once by ``SyncRun.start``."""

    id: uuid.UUID
    owner_id: uuid.UUID
    provider: str
    status: str
    token_json: dict[str, Any] | None
    # The account's Google address (connect's identity probe), for what "outside" means.
    email: str | None = None

    def __repr__(self) -> str:  # token_json deliberately absent: it must never reach a log
        return f"AccountContext(id={self.id}, provider={self.provider}, status={self.status})"


def token_account(token_json: dict[str, Any] | None) -> str | None:
    """The address an authorized-user JSON names (``account``), for accounts connected before
    the identity probe stored one."""
    account = (token_json or {}).get("account")
    return account if isinstance(account, str) and "@" in account else None
