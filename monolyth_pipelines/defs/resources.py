"""Dagster resources: the app database and the Google API clients."""

from __future__ import annotations

from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

from monolyth_pipelines import settings
from monolyth_pipelines.google.clients import GoogleClients
from monolyth_pipelines.google.credentials import credentials_for_grant
from monolyth_pipelines.store.engine import make_engine


class DatabaseResource(dg.ConfigurableResource):
    """The app database that holds the connector tables.

    ``url`` unset means ``MONOLYTH_DATABASE_URL``, else the embedded SQLite file; it is read when
    the resource is used, not when the code location loads.
    """

    url: str | None = None

    _engine: sa.Engine | None = PrivateAttr(default=None)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = make_engine(self.url or settings.database_url())
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class GoogleApiResource(dg.ConfigurableResource):
    """Builds an account's Google clients from its token_json.

    The endpoints come from the deployment: ``MONOLYTH_GOOGLE_API_ENDPOINT`` /
    ``MONOLYTH_GOOGLE_TOKEN_URI`` (unset: Google itself). The two fields stay for compatibility,
    but a run that sets them to anything the deployment did not list in
    ``MONOLYTH_GOOGLE_ENDPOINT_ALLOWLIST`` is refused (``bad_config``): run config is editable by
    anyone with the Dagster UI, and the token URI receives every account's refresh token.
    """

    api_endpoint: str | None = None
    token_uri: str | None = None

    def endpoints(self) -> settings.GoogleEndpoints:
        """Raises ``settings.ConfigError`` for an endpoint the deployment did not allow."""
        return settings.GoogleEndpoints.from_env().with_override(
            api_endpoint=self.api_endpoint, token_uri=self.token_uri
        )

    def clients_for(self, token_json: dict[str, Any]) -> GoogleClients:
        endpoints = self.endpoints()
        credentials = credentials_for_grant(token_json, endpoints)
        return GoogleClients(credentials, endpoints)
