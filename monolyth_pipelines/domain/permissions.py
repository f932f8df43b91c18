"""Who can see a Drive file: its permissions normalised, its visibility class, and what a change
of them means. Pure functions only.

Visibility classes, from least to most exposed (``VISIBILITY_ORDER``):

* ``private``: one person (the owner, or a shared drive's only member) and nobody else;
* ``shared_internal``: users or groups, all in the account's domain;
* ``domain``: everyone in the account's domain (a ``domain`` permission for that domain);
* ``shared_external``: a user, group or domain outside the account's domain;
* ``anyone_with_link``: an ``anyone`` permission that does not allow discovery;
* ``public``: an ``anyone`` permission that allows discovery (findable on the web).

The most exposed permission decides. "Outside" is judged against the domain of the account's
Google address; with no domain known (or a consumer gmail.com account), every other user is
counted as outside, the cautious reading. Owners count as principals: a file an outside colleague
owns and shared with the account is visible outside.

Google sends ``permissions`` only to users who may share the file, and never for items in shared
drives (``permissions.list`` gives those). A My Drive file whose permissions Google withholds is
classified from what is known (its owners and the account itself: someone shared it with the
account), and its meta says ``permissions_complete: false``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The Permission fields a sync asks for, inside files.list / changes.list / permissions.list.
PERMISSION_FIELDS = "type,role,emailAddress,domain,allowFileDiscovery,permissionDetails(inherited)"
FILE_PERMISSIONS_FIELD = f"permissions({PERMISSION_FIELDS})"
PERMISSIONS_LIST_FIELDS = f"nextPageToken,permissions({PERMISSION_FIELDS})"

TYPES = ("user", "group", "domain", "anyone")
OWNER_ROLES = frozenset({"owner"})


class Visibility(StrEnum):
    PRIVATE = "private"
    SHARED_INTERNAL = "shared_internal"
    DOMAIN = "domain"
    SHARED_EXTERNAL = "shared_external"
    ANYONE_WITH_LINK = "anyone_with_link"
    PUBLIC = "public"


VISIBILITY_ORDER: tuple[Visibility, ...] = tuple(Visibility)
RANK = {v.value: n for n, v in enumerate(VISIBILITY_ORDER)}
# Visible to someone outside the account's organisation.
EXTERNAL = frozenset({Visibility.SHARED_EXTERNAL, Visibility.ANYONE_WITH_LINK, Visibility.PUBLIC})
# Reachable by anyone who has the link (or finds it).
OPEN = frozenset({Visibility.ANYONE_WITH_LINK, Visibility.PUBLIC})


# Consumer Google accounts: everyone on gmail.com is not one organisation.
CONSUMER_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def domain_of(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def account_domain(email: str | None) -> str | None:
    """The organisation's domain of the account's Google address; None for a consumer account
    (gmail.com), whose every share with someone else is external."""
    domain = domain_of(email)
    return None if domain in CONSUMER_DOMAINS else domain


def _inherited(raw: Mapping[str, Any]) -> bool:
    details = raw.get("permissionDetails")
    if type(details) is not list or not details:
        return False
    # Inherited only when every grant behind it is: a direct grant on the item makes it its own.
    return all(type(d) is dict and d.get("inherited") is True for d in details)


def _normalised(raw: Any) -> tuple[tuple[str, str, str, str, bool], dict[str, Any]] | None:
    """(sort key, normalised permission), or None; ``type(..) is``, not isinstance: this runs for
    every permission of every file of a full listing."""
    if type(raw) is not dict:
        return None
    kind = raw.get("type")
    role = raw.get("role")
    if type(role) is not str or not role:
        return None
    inherited = _inherited(raw)
    if kind == "user" or kind == "group":
        email = raw.get("emailAddress")
        if type(email) is not str or "@" not in email:
            return None
        email = email.lower()
        return (kind, email, role, "", inherited), {
            "type": kind,
            "role": role,
            "email": email,
            "inherited": inherited,
        }
    if kind == "domain":
        domain = raw.get("domain")
        if type(domain) is not str or not domain:
            return None
        domain = domain.lower()
        discoverable = raw.get("allowFileDiscovery") is True
        return (kind, domain, role, str(discoverable), inherited), {
            "type": kind,
            "role": role,
            "domain": domain,
            "discoverable": discoverable,
            "inherited": inherited,
        }
    if kind == "anyone":
        discoverable = raw.get("allowFileDiscovery") is True
        return (kind, "", role, str(discoverable), inherited), {
            "type": kind,
            "role": role,
            "discoverable": discoverable,
            "inherited": inherited,
        }
    return None


def normalise_one(raw: Any) -> dict[str, Any] | None:
    """One Google Permission as ``{type, role, email | domain, discoverable, inherited}``;
    None when it names no grantee we can read (unknown type, user without an address)."""
    found = _normalised(raw)
    return None if found is None else found[1]


def normalise(raw: Iterable[Any]) -> list[dict[str, Any]]:
    """Google's permissions as a sorted list without duplicates: the same grants always give the
    same list, so a stored row changes only when the grants do."""
    seen: dict[tuple[str, str, str, str, bool], dict[str, Any]] = {}
    for item in raw:
        found = _normalised(item)
        if found is not None and found[0] not in seen:
            seen[found[0]] = found[1]
    if len(seen) < 2:
        return list(seen.values())
    return [seen[k] for k in sorted(seen)]


def inferred(owner_emails: Sequence[str], account_email: str | None) -> list[dict[str, Any]]:
    """What is known of a My Drive file whose permissions Google withholds (the account may not
    share it): its owners, and the account, which someone let read it."""
    raw: list[dict[str, Any]] = [{"type": "user", "role": "owner", "emailAddress": e} for e in owner_emails]
    if account_email and account_email.lower() not in {e.lower() for e in owner_emails}:
        raw.append({"type": "user", "role": "reader", "emailAddress": account_email})
    return normalise(raw)


def classify(permissions: Sequence[Mapping[str, Any]], account_domain: str | None) -> Visibility:
    """The visibility class of a file with these (normalised) permissions; see the module doc."""
    best = Visibility.PRIVATE
    people: set[str] = set()
    for permission in permissions:
        kind = permission["type"]
        if kind == "anyone":
            found = Visibility.PUBLIC if permission.get("discoverable") else Visibility.ANYONE_WITH_LINK
        elif kind == "domain":
            inside = account_domain is not None and permission["domain"] == account_domain
            found = Visibility.DOMAIN if inside else Visibility.SHARED_EXTERNAL
        else:
            people.add(permission["email"])
            continue
        if RANK[found] > RANK[best]:
            best = found
    if len(people) >= 2:
        # One person alone is private, wherever their address is; with two or more, one outside
        # the domain (or no domain to judge by) makes the share external.
        outside = account_domain is None or any(domain_of(e) != account_domain for e in people)
        found = Visibility.SHARED_EXTERNAL if outside else Visibility.SHARED_INTERNAL
        if RANK[found] > RANK[best]:
            best = found
    return best


def is_shared(visibility: str) -> bool:
    return visibility != Visibility.PRIVATE


def sharing_fields(
    raw: Any,
    *,
    account_domain: str | None,
    owner_emails: Sequence[str] = (),
    account_email: str | None = None,
) -> dict[str, Any]:
    """The meta keys a Drive row carries about its sharing: ``permissions`` (normalised),
    ``visibility``, ``shared`` and, when Google withheld the list, ``permissions_complete``."""
    if isinstance(raw, list):
        permissions = normalise(raw)
        complete = True
    else:
        permissions = inferred(owner_emails, account_email)
        complete = False
    visibility = classify(permissions, account_domain)
    out: dict[str, Any] = {
        "permissions": permissions,
        "visibility": visibility.value,
        "shared": is_shared(visibility),
    }
    if not complete:
        out["permissions_complete"] = False
    return out


def _grantee(permission: Mapping[str, Any]) -> dict[str, Any]:
    """A permission as an event names it: who (an address only for users and groups), with what
    role; ``inherited`` is left out (a grant moving to the parent is not a change of access)."""
    return {k: v for k, v in permission.items() if k != "inherited"}


def sharing_change(
    before: Sequence[Mapping[str, Any]] | None,
    before_visibility: str | None,
    after: Sequence[Mapping[str, Any]],
    after_visibility: str,
) -> tuple[str, dict[str, Any]] | None:
    """The ``shared`` / ``unshared`` event of a stored row whose permissions went from ``before``
    to ``after``: (kind, changes), or None when nothing about access changed (or nothing was
    known before). ``changes`` = {"visibility": {"old", "new"}, "gained": [...], "lost": [...]}.

    The kind follows the visibility when it moved; at the same class, ``shared`` if anyone
    gained access, else ``unshared``. The Postgres page statement computes the same thing
    (store/file_events.py); tests hold the two together.
    """
    if before is None or before_visibility is None:
        return None
    old = [_grantee(p) for p in before]
    new = [_grantee(p) for p in after]
    gained = [p for p in new if p not in old]
    lost = [p for p in old if p not in new]
    if not gained and not lost and before_visibility == after_visibility:
        return None
    old_rank, new_rank = RANK.get(before_visibility, -1), RANK[after_visibility]
    if new_rank != old_rank:
        kind = "shared" if new_rank > old_rank else "unshared"
    else:
        kind = "shared" if gained else "unshared"
    return kind, {
        "visibility": {"old": before_visibility, "new": after_visibility},
        "gained": gained,
        "lost": lost,
    }


@dataclass(frozen=True, slots=True)
class SharingContext:
    """Whose Drive it is, for the visibility class: the account's address and its domain."""

    email: str | None = None

    @property
    def domain(self) -> str | None:
        return account_domain(self.email)


NO_SHARING = SharingContext()


def sharing_meta(file: Mapping[str, Any], sharing: SharingContext) -> dict[str, Any] | None:
    """``permissions``, ``visibility``, ``shared`` for the row; None for a shared-drive item that
    arrived without its permissions (the sync fetches them with permissions.list first)."""
    raw = file.get("permissions")
    if raw is None and file.get("driveId"):
        return None
    owners = file.get("owners")
    owner_emails = [
        o["emailAddress"]
        for o in (owners if isinstance(owners, list) else [])
        if isinstance(o, dict) and isinstance(o.get("emailAddress"), str)
    ]
    return sharing_fields(
        raw, account_domain=sharing.domain, owner_emails=owner_emails, account_email=sharing.email
    )
