"""Google API clients for one account, pointed at Google or at the emulator.

Every client and batch URI derives from ``GoogleEndpoints``: the client library sends batches to
Google's host whatever ``api_endpoint`` says, so batch URIs are built here, never taken from it.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import Resource, build
from googleapiclient.http import BatchHttpRequest
from googleapiclient.model import JsonModel

from monolyth_pipelines.google.json_model import FastJsonModel
from monolyth_pipelines.settings import GoogleEndpoints

HTTP_TIMEOUT_SECONDS = 60


class CountingHttp(httplib2.Http):
    """httplib2.Http that counts requests by path, so a run can report its API calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: Counter[str] = Counter()

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        self.requests[f"{method} {urlsplit(uri).path}"] += 1
        return super().request(uri, method, *args, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def nested_built_once(resource: Resource) -> Resource:
    """``resource`` with each nested resource (``drive.files()``, ``gmail.users().messages()``)
    built on first use and kept. The library builds a nested resource's methods from the
    discovery document on every call (0.2-2 ms of CPU; ``files()`` the most), and a sync asks for
    one per page, the probe and channel calls one per account."""
    for name in list(getattr(resource, "_dynamic_attrs", ())):
        build_nested = getattr(resource, name)
        if getattr(build_nested, "__is_resource__", False):
            kept = functools.cache(lambda build_nested=build_nested: nested_built_once(build_nested()))
            setattr(resource, name, kept)
    return resource


def _build(api: str, endpoint: str, http: Any, model: JsonModel | None = None) -> Resource:
    """Drive v3 or Gmail v1 from the bundled discovery document, its nested resources kept."""
    return nested_built_once(
        build(
            api,
            "v3" if api == "drive" else "v1",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            model=model,
            client_options={"api_endpoint": endpoint},
        )
    )


class GoogleClients:
    """The Drive and Gmail clients of one account, sharing one authorised, counting transport."""

    def __init__(self, credentials: Credentials, endpoints: GoogleEndpoints) -> None:
        self.credentials = credentials
        self.endpoints = endpoints
        self.transport = CountingHttp(timeout=HTTP_TIMEOUT_SECONDS)
        self.http = google_auth_httplib2.AuthorizedHttp(credentials, http=self.transport)
        self._drive: Resource | None = None
        self._gmail: Resource | None = None

    def drive(self) -> Resource:
        if self._drive is None:
            self._drive = _build("drive", self.endpoints.drive_api_endpoint, self.http, FastJsonModel())
        return self._drive

    def gmail(self) -> Resource:
        if self._gmail is None:
            self._gmail = _build("gmail", self.endpoints.gmail_api_endpoint, self.http, FastJsonModel())
        return self._gmail

    def drive_batch(self, callback: Callable[..., None] | None = None) -> BatchHttpRequest:
        return BatchHttpRequest(callback=callback, batch_uri=self.endpoints.drive_batch_uri)

    def gmail_batch(self, callback: Callable[..., None] | None = None) -> BatchHttpRequest:
        return BatchHttpRequest(callback=callback, batch_uri=self.endpoints.gmail_batch_uri)

    @property
    def api_requests(self) -> int:
        """HTTP requests to the APIs, token refreshes excluded."""
        token_path = urlsplit(self.endpoints.token_uri).path
        return sum(n for key, n in self.transport.requests.items() if not key.endswith(" " + token_path))

    def close(self) -> None:
        for conn in self.transport.connections.values():
            conn.close()


_shared_lock = threading.Lock()
_shared: dict[tuple[str, str], Resource] = {}


def shared_api(api: str, endpoint: str) -> Resource:
    """A Drive v3 or Gmail v1 Resource built once per process, for many accounts.

    Building one costs tens of milliseconds of CPU; a call made from it runs on the account's own
    transport with ``request.execute(http=...)``, so probes and channel calls for thousands of
    accounts never build one each.
    """
    with _shared_lock:
        key = (api, endpoint)
        if key not in _shared:
            _shared[key] = _build(api, endpoint, httplib2.Http())
        return _shared[key]
