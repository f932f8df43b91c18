"""The API clients build each nested resource once, and a kept one still sends what it should."""

from __future__ import annotations

from google.oauth2.credentials import Credentials

from monolyth_pipelines.google.clients import GoogleClients, shared_api
from monolyth_pipelines.settings import GoogleEndpoints

ENDPOINTS = GoogleEndpoints.from_env({"MONOLYTH_GOOGLE_API_ENDPOINT": "http://127.0.0.1:9/"})


def test_nested_resources_are_built_once_per_client() -> None:
    clients = GoogleClients(Credentials(token="t"), ENDPOINTS)
    drive, gmail = clients.drive(), clients.gmail()
    assert drive.files() is drive.files() and drive.changes() is drive.changes()
    assert gmail.users().messages().attachments() is gmail.users().messages().attachments()
    shared = shared_api("drive", ENDPOINTS.drive_api_endpoint)
    assert shared.changes() is shared.changes() and shared.changes() is not drive.changes()


def test_a_kept_resource_builds_each_request_afresh() -> None:
    clients = GoogleClients(Credentials(token="t"), ENDPOINTS)
    drive = clients.drive()
    first = drive.files().list(pageSize=10, pageToken="a")
    second = drive.files().list(pageSize=20)
    assert first.uri.startswith(ENDPOINTS.drive_api_endpoint)
    assert "pageToken=a" in first.uri and "pageSize=10" in first.uri
    assert "pageToken" not in second.uri and "pageSize=20" in second.uri
    assert drive.files()._http is clients.http, "each account's calls on its own transport"
