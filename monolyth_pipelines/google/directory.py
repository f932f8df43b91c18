"""Admin SDK Directory ``users.list`` for a Workspace domain, as its admin (impersonated).

The client comes from the discovery document bundled with google-api-python-client
(``admin``/``directory_v1``) and points where ``GoogleEndpoints`` says, like the Drive and Gmail
clients. Pages of up to 500 users are yielded as they arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
from google.auth.credentials import Credentials
from googleapiclient.discovery import build

from monolyth_pipelines import settings
from monolyth_pipelines.google.clients import HTTP_TIMEOUT_SECONDS, CountingHttp
from monolyth_pipelines.google.retry import Backoff, call_with_retries, expect_json_object

DIRECTORY_USER_READONLY = "https://www.googleapis.com/auth/admin.directory.user.readonly"
PAGE_SIZE = 500  # users.list's maximum
_FIELDS = "nextPageToken,users(id,primaryEmail,suspended,archived)"


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    email: str
    suspended: bool
    archived: bool

    @property
    def active(self) -> bool:
        """Whose data can be synced: an archived or suspended user cannot be impersonated."""
        return not (self.suspended or self.archived)


class DirectoryClient:
    """One domain admin's Directory client, on a counting transport (``requests``)."""

    def __init__(self, credentials: Credentials, endpoints: settings.GoogleEndpoints) -> None:
        self.transport = CountingHttp(timeout=HTTP_TIMEOUT_SECONDS)
        self.http = google_auth_httplib2.AuthorizedHttp(credentials, http=self.transport)
        self.service = build(
            "admin",
            "directory_v1",
            http=self.http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": endpoints.directory_api_endpoint},
        )

    def user_pages(self, query: str | None, policy: Backoff) -> Iterator[list[DirectoryUser]]:
        """Every user of the admin's customer (``my_customer``) matching ``query``, a page at a time."""
        users = self.service.users()
        params: dict[str, Any] = {"customer": "my_customer", "maxResults": PAGE_SIZE, "fields": _FIELDS}
        if query:
            params["query"] = query
        page_token: str | None = None
        while True:
            request = users.list(**params, **({"pageToken": page_token} if page_token else {}))
            answer = call_with_retries(
                lambda request=request: expect_json_object(request.execute()), policy=policy
            )
            yield [
                DirectoryUser(
                    id=str(u["id"]),
                    email=str(u["primaryEmail"]),
                    suspended=bool(u.get("suspended")),
                    archived=bool(u.get("archived")),
                )
                for u in answer.get("users", [])
                if u.get("id") and u.get("primaryEmail")
            ]
            page_token = answer.get("nextPageToken")
            if not page_token:
                return

    @property
    def requests(self) -> int:
        return self.transport.total

    def close(self) -> None:
        for conn in self.transport.connections.values():
            conn.close()
