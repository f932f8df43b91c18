"""When a sync's failure means the user must connect again (``status_reason = needs_reauth``)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from monolyth_pipelines.google.errors import ErrorCode, SyncError
from monolyth_pipelines.store.schema import AccountStatus, AccountStatusReason, connector_accounts
from monolyth_pipelines.store.timeutil import utcnow

# Google's reasons for a token that lacks a scope (not for a single file the user cannot open).
_SCOPE_REASONS = frozenset({"insufficientpermissions", "access_token_scope_insufficient"})


def needs_reauth(error: SyncError) -> bool:
    """invalid_grant, a revoked grant, or a token that lost its scopes: only a reconnect helps."""
    if error.code == ErrorCode.AUTH_REVOKED:
        return True
    return error.code == ErrorCode.INSUFFICIENT_PERMISSIONS and (error.reason or "").lower() in _SCOPE_REASONS


def reauth_message(error: SyncError) -> str:
    if error.code == ErrorCode.AUTH_REVOKED:
        return f"Google no longer accepts the grant (revoked or expired): reconnect it. ({error.message})"
    return f"The grant lacks a scope the sync needs: reconnect and allow read access. ({error.message})"


def mark_needs_reauth(conn: sa.Connection, account_id: uuid.UUID, message: str) -> bool:
    """``connected`` → ``error``/``needs_reauth``. A disconnect in between stays a disconnect."""
    result = conn.execute(
        connector_accounts.update()
        .where(
            connector_accounts.c.id == account_id,
            connector_accounts.c.status == AccountStatus.CONNECTED.value,
        )
        .values(
            status=AccountStatus.ERROR.value,
            status_reason=AccountStatusReason.NEEDS_REAUTH.value,
            status_message=message,
            updated_at=utcnow(),
        )
    )
    return result.rowcount == 1
