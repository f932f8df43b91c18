"""When a sync's failure means the user must connect again (``status_reason = needs_reauth``)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.store.schema import AccountStatus, AccountStatusReason, connector_accounts
from monolyth_pipelines.store.timeutil import utcnow

# How Google words a 403 for a token that lacks a scope, as opposed to a permission the user lacks
# on one item or a policy (both also insufficient_permissions, and not fixed by reconnecting).
_SCOPE_REASON = "access_token_scope_insufficient"
_SCOPE_MESSAGE = "insufficient authentication scopes"


def needs_reauth(error: SyncError) -> bool:
    """invalid_grant, a revoked grant, or a token that lost its scopes: only a reconnect helps."""
    if error.code == ErrorCode.AUTH_REVOKED:
        return True
    if error.code != ErrorCode.INSUFFICIENT_PERMISSIONS:
        return False
    return (error.reason or "").lower() == _SCOPE_REASON or _SCOPE_MESSAGE in error.message.lower()


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
