"""When a sync's failure means the user must connect again (``status_reason = needs_reauth``).

Pure: the account row is marked by ``store.accounts.mark_needs_reauth``."""

from __future__ import annotations

from monolyth_pipelines.errors import ErrorCode, SyncError

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


# Token-endpoint answers about the service account itself rather than one user: the delegation
# was revoked, or the key or the account was deleted or disabled.
_DOMAIN_WIDE = frozenset({"unauthorized_client", "access_denied", "invalid_client", "disabled_client"})


def domain_wide(error: SyncError) -> bool:
    """For an account of a Workspace domain: whether the failure is the domain's key's, so every
    account of the domain needs the same fix (one message, no run of each finding out alone)."""
    if error.code not in (ErrorCode.AUTH_REVOKED, ErrorCode.OAUTH_CLIENT_INVALID):
        return False
    return (error.reason or "").lower() in _DOMAIN_WIDE or "invalid jwt signature" in error.message.lower()
