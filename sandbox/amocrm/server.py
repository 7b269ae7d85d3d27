"""A local emulator of amoCRM's API v4 over real HTTP (stdlib `ThreadingHTTPServer`, loopback).

    with AmoSandboxServer(state, AmoOptions(), port=0) as srv:
        requests.get(srv.base_url + "/api/v4/contacts",
                     headers={"Authorization": f"Bearer {srv.long_lived_token}"})

Routes live in `_ROUTES`; handlers in `api_read` / `api_write` / `oauth`; the rate limit, the
account block and injected faults in `faults`; the HTTP handler, lifecycle, state file and fault
draws it shares with the HubSpot emulator in `sandbox.http`; `edit_as_user` /
`edit_as_integration` (`edits`) change a contact field as a rep or another integration would.
See sandbox/README.md ("amoCRM sandbox").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

from sandbox.amocrm import api_fields, api_read, api_tasks, api_write
from sandbox.amocrm.common import (
    PROBLEM,
    AmoOptions,
    ApiError,
    Context,
    Request,
    Response,
    encode_json,
    error_response,
)
from sandbox.amocrm.edits import EditsMixin
from sandbox.amocrm.faults import Limiter, html_page, server_error
from sandbox.amocrm.oauth import TokenRegistry
from sandbox.amocrm.state import AmoState
from sandbox.http import EmulatorServer, SandboxHandler
from sandbox.http import Response as BaseResponse

Handler = Callable[..., Response]
_E = r"(contacts|leads)"
_N = r"(\d+)"
# (method, path pattern, handler, is_write)
_TABLE: list[tuple[str, str, Handler, bool]] = [
    ("GET", "/api/v4/account", api_read.account, False),
    ("GET", "/api/v4/users", api_read.users, False),
    ("GET", f"/api/v4/users/{_N}", api_read.user, False),
    ("GET", "/api/v4/leads/pipelines", api_read.pipelines, False),
    ("GET", f"/api/v4/leads/pipelines/{_N}", api_read.pipeline, False),
    ("GET", f"/api/v4/{_E}/custom_fields", api_read.custom_fields, False),
    ("POST", f"/api/v4/{_E}/custom_fields", api_fields.create_custom_fields, True),
    ("PATCH", f"/api/v4/{_E}/custom_fields", api_fields.patch_custom_fields, True),
    ("GET", f"/api/v4/{_E}/custom_fields/{_N}", api_read.custom_field, False),
    ("PATCH", f"/api/v4/{_E}/custom_fields/{_N}", api_fields.patch_custom_fields, True),
    ("GET", f"/api/v4/{_E}/notes", api_read.notes, False),
    ("GET", f"/api/v4/{_E}/{_N}/notes", api_read.notes, False),
    ("GET", "/api/v4/contacts", api_read.contacts, False),
    ("PATCH", "/api/v4/contacts", api_write.patch_contacts, True),
    ("GET", f"/api/v4/contacts/{_N}", api_read.contact, False),
    ("PATCH", f"/api/v4/contacts/{_N}", api_write.patch_contacts, True),
    ("GET", "/api/v4/leads", api_read.leads, False),
    ("GET", f"/api/v4/leads/{_N}", api_read.lead, False),
    ("GET", "/api/v4/events", api_read.events, False),
    ("GET", "/api/v4/tasks", api_read.tasks, False),
    ("POST", "/api/v4/tasks", api_tasks.create_tasks, True),
    ("PATCH", "/api/v4/tasks", api_tasks.patch_tasks, True),
    ("GET", f"/api/v4/tasks/{_N}", api_read.task, False),
    ("PATCH", f"/api/v4/tasks/{_N}", api_tasks.patch_tasks, True),
]
_ROUTES = [(m, re.compile(f"^{p}$"), h, w) for m, p, h, w in _TABLE]
TOKEN_PATH = "/oauth2/access_token"


def route_key(method: str, path: str) -> str:
    """`GET /api/v4/contacts/{id}`: the by_route key of a request (ids masked)."""
    return f"{method} " + re.sub(r"/\d+(?=/|$)", "/{id}", path)


class _HttpHandler(SandboxHandler):
    server_version = "nginx"

    def version_string(self) -> str:
        return "nginx"

    def make_request(self, path: str, query: str, body: bytes) -> Request:
        host = self.headers.get("Host") or self.sandbox.base_url.split("://", 1)[1]
        pairs = parse_qsl(query, keep_blank_values=True)
        return Request(self.command, path, pairs, self.headers, body, f"http://{host}")

    def content_type(self, response: BaseResponse, payload: bytes) -> str | None:
        if not payload:
            return None
        kind = response.content_type
        if kind in (PROBLEM, "application/hal+json", "application/json"):
            kind += "; charset=utf-8"
        return kind

    def sends_length(self, response: BaseResponse) -> bool:
        return response.status != 204


class AmoSandboxServer(EditsMixin, EmulatorServer[AmoState, AmoOptions]):
    """The amoCRM emulator. Use as a context manager or call `start()` / `stop()`.

    `state_path`: when given, the state is saved there (atomically) at most once per
    `persist_debounce_s` after mutations, and on stop (and soon after start if the file is
    missing). Besides the shared faults, `set_faults` takes e.g. rate_per_second=3,
    block_after_429=2, block_s=1.
    """

    handler_class = _HttpHandler
    counters = ("401", "403", "429", "5xx", "dropped", "dropped_after_apply")
    persist_missing = True
    persist_thread = "amocrm-persist"

    def __init__(
        self,
        state: AmoState,
        options: AmoOptions | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        state_path: str | Path | None = None,
        persist_debounce_s: float = 1.0,
    ) -> None:
        super().__init__(state, options or AmoOptions(), port, host, state_path, persist_debounce_s)
        self.ctx = Context(state, self.options)
        self.tokens = TokenRegistry(state, self.options)
        self.limiter = Limiter(self.options)

    @property
    def long_lived_token(self) -> str | None:
        return self.options.long_lived_token

    def _bound(self) -> None:
        self.tokens.api_domain = self.base_url.split("://", 1)[1]
        self.tokens.register_initial()

    # ------------------------------------------------------------------ control
    def issue_code(self) -> str:
        """A fresh single-use authorization code."""
        return self.tokens.issue_code()

    def expire_access_tokens(self) -> None:
        self.tokens.expire_access_tokens()

    def block(self, seconds: float | None = None) -> None:
        """Block the account now (403 to everything) for `seconds` (default `block_s`)."""
        self.limiter.block(seconds)

    def unblock(self) -> None:
        self.limiter.unblock()

    # ------------------------------------------------------------------ request pipeline
    def handle(self, req: Request) -> Response:
        """Answer one request (raises Drop to close the connection without an answer)."""
        opts = self.options
        path = req.path.rstrip("/") or "/"
        req.path = path
        received = time.monotonic()
        draws = self._begin(route_key(req.method, path), opts.latency_jitter_ms)
        latency_ms = opts.latency_ms + draws.jitter * opts.latency_jitter_ms
        arrival = received + latency_ms / opts.time_scale / 1000
        if self.limiter.blocked():
            self._count("403")
            return html_page(403)
        if draws.storm:
            return self._too_many()
        if draws.fail < opts.fail_rate_5xx:
            self._count("5xx")
            return server_error(draws.code)
        if path == TOKEN_PATH:
            if req.method != "POST":
                return error_response(ApiError(405, "Method not allowed"))
            return self.tokens.token_endpoint(req)
        if not path.startswith("/api/v4/"):
            return error_response(ApiError(404, "Not found"))
        if not self.limiter.admit(arrival):
            return self._too_many()
        denied = self.tokens.authenticate(req)
        if denied is not None:
            self._count("401")
            return error_response(denied)
        found = self._match(req.method, path)
        if found is None:
            return error_response(ApiError(404, f"No route for {req.method} {path}"))
        handler, is_write, args = found
        if is_write:
            self._count("writes")
        try:
            with self.state.lock:
                response = handler(self.ctx, req, *args)
                # encoded before the lock is released: a body may share the state's values
                if response.body is not None and response.raw is None:
                    response.raw = encode_json(response.body).encode("utf-8")
        except ApiError as exc:
            response = error_response(exc)
        self._lose_answer(draws, is_write, response)
        return response

    def _too_many(self) -> Response:
        self._count("429")
        self.limiter.note_429()
        return html_page(429)

    @staticmethod
    def _match(method: str, path: str) -> tuple[Handler, bool, tuple[str, ...]] | None:
        allowed = False
        for route_method, pattern, handler, is_write in _ROUTES:
            m = pattern.match(path)
            if m is None:
                continue
            if route_method == method:
                return handler, is_write, m.groups()
            allowed = True
        if allowed:
            raise_405 = ApiError(405, f"Method {method} is not allowed here")
            return (lambda *_: error_response(raise_405)), False, ()
        return None
