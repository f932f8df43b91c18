"""An emulator with an app OAuth client, and the deployment configured to use both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from monolyth_pipelines.accounts import connect
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.google import oauth_flow

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect itself


@dataclass
class OAuthWorld:
    emulator: GoogleEmulator
    base_url: str
    engine: sa.Engine
    client_id: str
    client_secret: str
    owner: uuid.UUID

    def consent(self, provider: str = "google_drive", login_hint: str | None = None) -> dict[str, str]:
        """The browser's part: open the consent URL, get redirected back with a code."""
        request = oauth_flow.authorization_url(provider, REDIRECT_URI, login_hint=login_hint)
        answer = requests.get(request.url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        params = {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}
        assert params["state"] == request.state
        return {**params, "code_verifier": request.code_verifier}

    def connect(self, provider: str = "google_drive", login_hint: str | None = None) -> connect.ConnectResult:
        got = self.consent(provider, login_hint)
        return connect.exchange_code(
            self.engine,
            provider=provider,
            owner_id=self.owner,
            code=got["code"],
            redirect_uri=REDIRECT_URI,
            code_verifier=got["code_verifier"],
        )


@pytest.fixture
def oauth_world(
    engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OAuthWorld]:
    emulator = GoogleEmulator(seed=13)
    emulator.add_account("ada@example.com", drive_files=40, gmail_threads=5)
    emulator.add_account("bob@example.com", drive_files=10)
    with emulator.serve() as base_url:
        secrets = emulator.oauth_client_secrets()["installed"]
        monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
        monkeypatch.setenv("MONOLYTH_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        monkeypatch.setenv("MONOLYTH_GOOGLE_API_ENDPOINT", base_url)
        monkeypatch.setenv("MONOLYTH_GOOGLE_TOKEN_URI", f"{base_url}/token")
        monkeypatch.setenv("MONOLYTH_GOOGLE_CLIENT_ID", secrets["client_id"])
        monkeypatch.setenv("MONOLYTH_GOOGLE_CLIENT_SECRET", secrets["client_secret"])
        monkeypatch.setenv("MONOLYTH_RETRY_BASE_SECONDS", "0.001")
        monkeypatch.setenv("MONOLYTH_RETRY_MAX_ATTEMPTS", "2")
        monkeypatch.setenv("MONOLYTH_STEP_RETRY_WAIT_SECONDS", "0")
        monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "int_gmail")
        emulator.consent_as("ada@example.com")
        yield OAuthWorld(
            emulator, base_url, engine, secrets["client_id"], secrets["client_secret"], uuid.uuid4()
        )
