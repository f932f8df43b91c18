"""Google Workspace domains: their users (Admin SDK Directory ``users.list``) and which service
accounts they delegated which scopes to (Admin console > Security > API controls > Domain Wide
Delegation). ``emulator/service_accounts.py`` checks a JWT-bearer grant against the delegations.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from monolyth_pipelines.emulator.calls import ApiResponse, CallContext, Route, json_response
from monolyth_pipelines.emulator.drive import person_for
from monolyth_pipelines.emulator.errors import ApiError, invalid_parameter
from monolyth_pipelines.emulator.oauth import require_scope
from monolyth_pipelines.emulator.paging import View, cursor, fingerprint, resume, scan

DIRECTORY_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
DIRECTORY_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
        "https://www.googleapis.com/auth/admin.directory.user",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
MAX_RESULTS = 500
DEFAULT_RESULTS = 100


@dataclass(slots=True)
class DirectoryUser:
    id: str
    primary_email: str
    given_name: str
    family_name: str
    customer_id: str
    is_admin: bool = False
    suspended: bool = False
    archived: bool = False
    deleted: bool = False
    org_unit_path: str = "/"
    aliases: tuple[str, ...] = ()

    def resource(self) -> dict[str, Any]:
        """The User resource as ``projection=basic`` has it (the fields a connector reads)."""
        body: dict[str, Any] = {
            "kind": "admin#directory#user",
            "id": self.id,
            "etag": '"' + hashlib.sha1(repr(self).encode()).hexdigest()[:27] + '"',
            "primaryEmail": self.primary_email,
            "name": {
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": f"{self.given_name} {self.family_name}",
            },
            "isAdmin": self.is_admin,
            "isDelegatedAdmin": False,
            "suspended": self.suspended,
            "archived": self.archived,
            "customerId": self.customer_id,
            "orgUnitPath": self.org_unit_path,
            "isMailboxSetup": True,
            "includeInGlobalAddressList": True,
            "emails": [{"address": self.primary_email, "primary": True}]
            + [{"address": a} for a in self.aliases],
        }
        if self.suspended:
            body["suspensionReason"] = "ADMIN"
        if self.deleted:
            body["deletionTime"] = "2026-01-01T00:00:00.000Z"
        return body


@dataclass
class Domain:
    name: str
    customer_id: str
    # Service account client id (numeric) -> the scopes the admin authorised for it.
    delegations: dict[str, frozenset[str]] = field(default_factory=dict)
    users: list[DirectoryUser] = field(default_factory=list)
    generation: int = 0


def user_id_for(email: str) -> str:
    """The user's numeric id: the same number Drive gives as the user's ``permissionId``
    (``drive.person_for``), as Google's ids are one per account."""
    return person_for(email, email).permission_id


class Workspace:
    """Every domain of the emulator. ``on_new_user`` creates the user's Drive and mailbox."""

    def __init__(self, on_new_user: Callable[[str], None]) -> None:
        self.domains: dict[str, Domain] = {}
        self._by_email: dict[str, DirectoryUser] = {}
        self._on_new_user = on_new_user

    def add_domain(self, name: str, *, admin: str = "admin") -> Domain:
        customer = "C0" + hashlib.sha1(name.encode()).hexdigest()[:7]
        domain = self.domains[name] = Domain(name, customer)
        self.add_user(f"{admin}@{name}", is_admin=True)
        return domain

    def domain(self, name: str) -> Domain:
        return self.domains[name]

    def add_user(
        self,
        email: str,
        *,
        is_admin: bool = False,
        suspended: bool = False,
        org_unit_path: str = "/",
        given_name: str | None = None,
        family_name: str = "User",
    ) -> DirectoryUser:
        email = email.lower()
        if email in self._by_email:
            raise ValueError(f"user exists: {email}")
        domain = self.domains[email.split("@", 1)[1]]
        user = DirectoryUser(
            id=user_id_for(email),
            primary_email=email,
            given_name=given_name or email.split("@")[0].replace(".", " ").title(),
            family_name=family_name,
            customer_id=domain.customer_id,
            is_admin=is_admin,
            suspended=suspended,
            org_unit_path=org_unit_path,
        )
        domain.users.append(user)
        domain.generation += 1
        self._by_email[email] = user
        self._on_new_user(email)
        return user

    def add_users(self, domain: str, count: int, *, prefix: str = "user", start: int = 1) -> list[str]:
        return [self.add_user(f"{prefix}{n}@{domain}").primary_email for n in range(start, start + count)]

    def user(self, email: str) -> DirectoryUser | None:
        return self._by_email.get(email.lower())

    def update_user(self, email: str, **changes: Any) -> DirectoryUser:
        """``suspended``, ``archived``, ``deleted``, ``org_unit_path``, ``is_admin``."""
        user = self._by_email[email.lower()]
        for name, value in changes.items():
            if name not in ("suspended", "archived", "deleted", "org_unit_path", "is_admin"):
                raise TypeError(f"unknown user field {name!r}")
            setattr(user, name, value)
        self.domains[user.primary_email.split("@", 1)[1]].generation += 1
        return user

    def delegate(self, domain: str, client_id: str, scopes: Iterable[str]) -> None:
        """What a super admin enters under Manage Domain Wide Delegation (replaces the entry)."""
        self.domains[domain].delegations[str(client_id)] = frozenset(scopes)

    def revoke_delegation(self, domain: str, client_id: str) -> None:
        self.domains[domain].delegations.pop(str(client_id), None)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "domain": d.name,
                "customer_id": d.customer_id,
                "users": len(d.users),
                "suspended": sum(1 for u in d.users if u.suspended),
                "delegations": {cid: sorted(s) for cid, s in d.delegations.items()},
            }
            for d in self.domains.values()
        ]


# --- users.list ---------------------------------------------------------------------------------

_CLAUSE = re.compile(r"(\w+)\s*([=:])\s*('[^']*'|\"[^\"]*\"|\S+)")
_BOOLEAN_FIELDS = {
    "isadmin": "is_admin",
    "issuspended": "suspended",
    "isarchived": "archived",
}


def compile_user_query(query: str) -> Callable[[DirectoryUser], bool]:
    """Google's user search: space-separated clauses ANDed; ``field=value``, ``field:value`` and
    ``field:prefix*``. Fields: email, name, givenName, familyName, orgUnitPath, isAdmin, isSuspended,
    isArchived. Anything else is 400, as an unknown field is at Google."""
    tests: list[Callable[[DirectoryUser], bool]] = []
    rest = _CLAUSE.sub("", query).strip()
    if rest:
        raise invalid_parameter("query", "Invalid Input")
    for name, op, raw in _CLAUSE.findall(query):
        value = raw.strip("'\"")
        key = name.lower()
        if key in _BOOLEAN_FIELDS:
            if value.lower() not in ("true", "false"):
                raise invalid_parameter("query", "Invalid Input")
            attr, wanted = _BOOLEAN_FIELDS[key], value.lower() == "true"
            tests.append(lambda u, attr=attr, wanted=wanted: getattr(u, attr) == wanted)
        elif key in ("email", "name", "givenname", "familyname", "orgunitpath"):
            tests.append(_text_test(key, op, value))
        else:
            raise invalid_parameter("query", "Invalid Input")
    return lambda user: all(t(user) for t in tests)


def _text_test(key: str, op: str, value: str) -> Callable[[DirectoryUser], bool]:
    def values(user: DirectoryUser) -> list[str]:
        if key == "email":
            return [user.primary_email, *user.aliases]
        if key == "givenname":
            return [user.given_name]
        if key == "familyname":
            return [user.family_name]
        if key == "orgunitpath":
            return [user.org_unit_path]
        return [user.given_name, user.family_name, f"{user.given_name} {user.family_name}"]

    wanted = value.lower()
    if op == ":" and wanted.endswith("*"):
        prefix = wanted[:-1]
        return lambda u: any(v.lower().startswith(prefix) for v in values(u))
    if key == "orgunitpath":  # orgUnitPath=/Sales matches the unit and the units under it
        under = wanted.rstrip("/") + "/"
        return lambda u: any(v.lower() == wanted or v.lower().startswith(under) for v in values(u))
    return lambda u: any(v.lower() == wanted for v in values(u))


def users_list(ctx: CallContext[Workspace]) -> ApiResponse:
    require_scope(ctx.caller, DIRECTORY_SCOPES)
    workspace, request = ctx.store, ctx.request
    caller = workspace.user(ctx.caller.email)
    if caller is None or not caller.is_admin:
        raise ApiError(403, "Not Authorized to access this resource/api", "forbidden")
    own = workspace.domains[caller.primary_email.split("@", 1)[1]]
    customer, domain_name = request.param("customer"), request.param("domain")
    if not customer and not domain_name:
        raise ApiError(400, "Bad Request", "badRequest")
    if customer and customer not in ("my_customer", own.customer_id):
        raise ApiError(403, "Not Authorized to access this resource/api", "forbidden")
    if domain_name and domain_name.lower() != own.name:
        raise ApiError(403, "Not Authorized to access this resource/api", "forbidden")
    limit = request.int_param(
        "maxResults", DEFAULT_RESULTS, minimum=1, maximum=MAX_RESULTS, strict=ctx.strict
    )
    mask = request.field_mask("admin.directory_v1", "Users")
    query = request.param("query") or ""
    matches = compile_user_query(query)
    show_deleted = request.bool_param("showDeleted")
    view = View(
        sorted(own.users, key=lambda u: u.primary_email), key=lambda u: u.id, generation=own.generation
    )
    listing = fingerprint("users.list", own.name, query, show_deleted)
    token = request.param("pageToken")
    start = resume(view, ctx.codec.decode(token), listing) if token else 0
    page, next_pos = scan(view, start, limit, lambda u: u.deleted == show_deleted and matches(u))
    body: dict[str, Any] = {
        "kind": "admin#directory#users",
        "etag": f'"{own.customer_id}-{own.generation}"',
        "users": [u.resource() for u in page],
    }
    if next_pos is not None:
        body["nextPageToken"] = ctx.codec.encode(cursor(view, next_pos, listing))
    if not page:
        del body["users"]  # Google leaves the key out of an empty answer
    return json_response(body, mask)


ROUTES: tuple[Route, ...] = (
    Route("GET", r"/admin/directory/v1/users", "admin.directory.users.list", users_list),
)
