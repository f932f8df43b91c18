"""The schema's enumerations (the CHECK constraints of store/schema.py and the values code writes)."""

from __future__ import annotations

from enum import StrEnum


class AccountStatus(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"
    PENDING = "pending"


class AccountStatusReason(StrEnum):
    """connector_accounts.status_reason: why an account is in ``error``."""

    NEEDS_REAUTH = "needs_reauth"  # the grant was revoked or expired, or scopes were lost
    MISSING_SCOPES = "missing_scopes"  # the user did not grant what the provider needs
    PROBE_FAILED = "probe_failed"  # the identity probe after connecting failed
    NOT_DELEGATED = "not_delegated"  # a Workspace domain did not authorise the service account


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Provider(StrEnum):
    GOOGLE_DRIVE = "google_drive"
    GMAIL = "gmail"


class JobKind(StrEnum):
    DRIVE_IMPORT = "drive_import"
    GMAIL_IMPORT = "gmail_import"


class FileEventKind(StrEnum):
    """What happened to one item in one sync run; ``connector_file_events.event``."""

    ADDED = "added"
    MODIFIED = "modified"
    RENAMED = "renamed"
    MOVED_OUT_OF_SCOPE = "moved_out_of_scope"
    TRASHED = "trashed"
    DELETED = "deleted"
    ACCESS_LOST = "access_lost"
    RESTORED = "restored"
    # Gmail: a message came into the synced label again, or left it.
    LABELLED = "labelled"
    UNLABELLED = "unlabelled"
    # Drive: who can see it changed (domain/permissions.py); ``changes`` says from what to what.
    SHARED = "shared"
    UNSHARED = "unshared"
