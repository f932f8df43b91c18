"""HTTP and routing: the stdlib ``ThreadingHTTPServer`` in front of the emulated APIs.

``Dispatcher`` is transport-free (method, target, headers, body in; an ``ApiResponse`` or
``DROP`` out) and runs every API call, alone or inside a batch, through the same steps:
authenticate, inject faults, admit against quotas, run the handler under the emulator lock, count.
``EmulatorServer`` serves it on a socket from a background thread.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from monolyth_pipelines.emulator import admin, batch, directory, drive_api, gmail_api, oidc
from monolyth_pipelines.emulator.calls import (
    JSON_TYPE,
    ApiRequest,
    ApiResponse,
    CallContext,
    Route,
    error_response,
    header_value,
    json_response,
    rewritten,
)
from monolyth_pipelines.emulator.consent import revoke_form
from monolyth_pipelines.emulator.errors import ApiError, not_found, unauthenticated
from monolyth_pipelines.emulator.oauth import bearer_token
from monolyth_pipelines.emulator.service_accounts import JWT_BEARER, unverified_claims

if TYPE_CHECKING:
    from monolyth_pipelines.emulator.emulator import GoogleEmulator

logger = logging.getLogger(__name__)

ROUTES: tuple[Route, ...] = drive_api.ROUTES + gmail_api.ROUTES + directory.ROUTES
TOKEN_PATHS = frozenset({"/token", "/oauth2/v4/token", "/o/oauth2/token"})
AUTH_PATHS = frozenset({"/o/oauth2/auth", "/o/oauth2/v2/auth"})
REVOKE_PATHS = frozenset({"/revoke", "/o/oauth2/revoke"})
CERTS_PATH = oidc.CERTS_PATH
# Batch path -> the API whose calls it accepts (None: either).
BATCH_PATHS: dict[str, str | None] = {
    "/batch/drive/v3": "drive",
    "/batch/gmail/v1": "gmail",
    "/batch": None,
}


class Dropped:
    """Answer nothing: close the connection (a dropped-connection fault)."""


DROP = Dropped()


def resolve(request: ApiRequest) -> Route | None:
    for route in ROUTES:
        params = route.match(request.method, request.path)
        if params is not None:
            request.path_params = params
            return route
    return None


class Dispatcher:
    def __init__(self, emulator: GoogleEmulator) -> None:
        self.emu = emulator

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> ApiResponse | Dropped:
        try:
            path = urlsplit(target).path
            if path in TOKEN_PATHS and method == "POST":
                return self._token(headers, body)
            if path in AUTH_PATHS and method == "GET":
                return self._authorize(target)
            if path in REVOKE_PATHS and method in ("POST", "GET"):
                return self._revoke(target, body)
            if path in BATCH_PATHS and method == "POST":
                return self._batch(path, headers, body)
            if path == CERTS_PATH and method == "GET":
                return self._certs()
            if path.startswith(admin.PREFIX):
                return admin.handle(self.emu, method, target, body)
            return self._single(ApiRequest.from_target(method, target, headers, body))
        except ApiError as exc:
            return error_response(exc)
        except Exception:  # a bug in the emulator must not look like a network failure
            logger.exception("emulator: unhandled error for %s %s", method, urlsplit(target).path)
            return error_response(ApiError(500))

    # --- one API call ---------------------------------------------------------------------------

    def _single(self, request: ApiRequest) -> ApiResponse | Dropped:
        route = resolve(request)
        token = bearer_token(request.headers, request.query)
        email, _ = self.emu.oauth.lookup(token)
        if route is None:
            self.emu.stats_store.http_request(email, "unknown")
            return error_response(not_found("Not Found"))
        endpoint = route.endpoint_for(request)
        self.emu.stats_store.http_request(email, endpoint)
        return self.execute(route, endpoint, request, token)

    def execute(
        self, route: Route, endpoint: str, request: ApiRequest, token: str | None
    ) -> ApiResponse | Dropped:
        emu = self.emu
        email, caller = emu.oauth.lookup(token)
        if caller is None:
            emu.stats_store.api_call(email, endpoint, 401)
            return error_response(unauthenticated())
        decision = emu.faults.decide(endpoint, caller.email)
        if decision.latency:
            time.sleep(decision.latency)
        if decision.drop:
            emu.stats_store.api_call(email, endpoint, None, injected=True)
            return DROP
        if decision.error is not None:
            emu.stats_store.api_call(email, endpoint, decision.error.code, injected=True)
            return error_response(decision.error)
        quota_error = emu.quotas.admit(endpoint, caller.email)
        if quota_error is not None:
            emu.stats_store.api_call(email, endpoint, quota_error.code, quota_exceeded=True)
            return error_response(quota_error)
        with emu.lock:
            store: Any
            if route.api == "admin":  # the Directory API reads the domains, not one account
                store = emu.workspace
            else:
                state = emu.account_state(caller.email)
                store = state.drive if route.api == "drive" else state.gmail
            context = CallContext(request, caller, store, emu.codec, emu.strict_limits)
            try:
                response = route.handler(context)
            except ApiError as exc:
                response = error_response(exc)
        emu.stats_store.api_call(email, endpoint, response.status, units=emu.quotas.cost(endpoint))
        if decision.rewrites and response.status == 200 and response.content_type.startswith(JSON_TYPE):
            return rewritten(response, decision.rewrites)
        return response

    # --- batch ----------------------------------------------------------------------------------

    def _batch(self, path: str, headers: Mapping[str, str], body: bytes) -> ApiResponse | Dropped:
        api = BATCH_PATHS[path]
        stats_name = f"batch.{api}" if api else "batch"
        outer_token = bearer_token(headers, {})
        try:
            calls = batch.parse_batch(header_value(headers, "content-type"), body, headers)
        except ApiError:
            self.emu.stats_store.http_request(self.emu.oauth.lookup(outer_token)[0], stats_name)
            raise
        first_token = bearer_token(calls[0].request.headers, calls[0].request.query)
        self.emu.stats_store.http_request(self.emu.oauth.lookup(outer_token or first_token)[0], stats_name)
        answers: list[tuple[str, ApiResponse]] = []
        for call in calls:
            route = resolve(call.request)
            if route is None or (api is not None and route.api != api):
                answers.append((call.content_id, error_response(not_found("Not Found"))))
                continue
            token = bearer_token(call.request.headers, call.request.query)
            result = self.execute(route, route.endpoint_for(call.request), call.request, token)
            if isinstance(result, Dropped):
                return DROP
            answers.append((call.content_id, result))
        content_type, data = batch.render_batch(answers)
        return ApiResponse(200, content_type, data, len(data))

    # --- OAuth ----------------------------------------------------------------------------------

    def _authorize(self, target: str) -> ApiResponse:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(target).query).items()}
        self.emu.stats_store.http_request(None, "oauth.authorize")
        status, answer = self.emu.oauth.consent.authorize(query)
        if status == 302:
            assert isinstance(answer, str)
            response = ApiResponse(302, "text/plain", b"", 0)
            response.headers.append(("Location", answer))
            return response
        return json_response(answer, status=status)

    def _certs(self) -> ApiResponse:
        """Google's OAuth signing certificates (``{kid: PEM}``): what OIDC push tokens verify against."""
        self.emu.stats_store.http_request(None, "oauth.certs")
        response = json_response(self.emu.push.oidc.certs())
        response.headers.append(("Cache-Control", f"public, max-age={oidc.CERTS_MAX_AGE_SECONDS}"))
        return response

    def _revoke(self, target: str, body: bytes) -> ApiResponse:
        token = revoke_form(body, urlsplit(target).query)
        status, answer, email = self.emu.oauth.revoke_endpoint(token)
        self.emu.stats_store.http_request(email, "oauth.revoke")
        self.emu.stats_store.api_call(email, "oauth.revoke", status)
        return json_response(answer, status=status)

    def _token(self, headers: Mapping[str, str], body: bytes) -> ApiResponse | Dropped:
        emu = self.emu
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        jwt_bearer = form.get("grant_type") == JWT_BEARER
        sub = unverified_claims(form.get("assertion", "")).get("sub") if jwt_bearer else None
        email = (sub if isinstance(sub, str) else None) if jwt_bearer else emu.oauth.account_of(body)
        emu.stats_store.http_request(email, "oauth.token")
        decision = emu.faults.decide("oauth.token", email)
        if decision.latency:
            time.sleep(decision.latency)
        if decision.drop:
            emu.stats_store.api_call(email, "oauth.token", None, injected=True)
            return DROP
        if decision.error is not None:
            # The token endpoint speaks OAuth's error shape, not the APIs' one.
            status = decision.error.code
            answer: dict[str, Any] = {
                "error": "temporarily_unavailable" if status == 503 else "internal_failure",
                "error_description": decision.error.message,
            }
        elif jwt_bearer:
            status, answer, email = emu.service_accounts.token_endpoint(form)
        else:
            status, answer, email = emu.oauth.token_endpoint(body, headers)
        emu.stats_store.api_call(email, "oauth.token", status, injected=decision.error is not None)
        response = json_response(answer, status=status)
        response.headers.append(("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"))
        return response


# --- HTTP ---------------------------------------------------------------------------------------

_QUERY = re.compile(r"\?\S*")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httplib2 expects
    # Headers and body go out in separate writes; with Nagle on, each answer would wait for the
    # client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "ESF"
    sys_version = ""
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        result = self.server.dispatcher.handle(self.command, self.path, headers, body)
        if isinstance(result, Dropped):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(result.status)
        self.send_header("Content-Type", result.content_type)
        self.send_header("Content-Length", str(result.length))
        for name, value in result.headers:
            self.send_header(name, value)
        self.send_header("Vary", "Origin, X-Origin, Referer")
        self.end_headers()
        try:
            for chunk in result.chunks():
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Paths only: query strings may carry access tokens, and bodies are never logged.
        logger.debug("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("emulator http: %s", _QUERY.sub("?…", format % args))


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def start(self) -> str:
        # A short poll keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="google-emulator", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self.shutdown()
        # Keep-alive connections would otherwise keep their handler threads waiting for a request.
        with self._connections_lock:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
