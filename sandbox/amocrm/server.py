"""A local emulator of amoCRM's API v4 over real HTTP (stdlib `ThreadingHTTPServer`, loopback).

    with AmoSandboxServer(state, AmoOptions(), port=0) as srv:
        requests.get(srv.base_url + "/api/v4/contacts",
                     headers={"Authorization": f"Bearer {srv.long_lived_token}"})

Routes live in `_ROUTES`; handlers in `api_read` / `api_write` / `oauth`; the rate limit, the
account block and injected faults in `faults`. See sandbox/README.md ("amoCRM sandbox").
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.amocrm import api_fields, api_read, api_tasks, api_write
from sandbox.amocrm.common import (
    PROBLEM,
    AmoOptions,
    ApiError,
    Context,
    Drop,
    Request,
    Response,
    error_response,
)
from sandbox.amocrm.faults import Limiter, html_page, server_error
from sandbox.amocrm.oauth import TokenRegistry
from sandbox.amocrm.state import AmoState, StatePersister

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


class AmoSandboxServer:
    """The amoCRM emulator. Use as a context manager or call `start()` / `stop()`.

    `state_path`: when given, the state is saved there (atomically) at most once per
    `persist_debounce_s` after mutations, and on stop.
    """

    def __init__(
        self,
        state: AmoState,
        options: AmoOptions | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        state_path: str | Path | None = None,
        persist_debounce_s: float = 1.0,
    ) -> None:
        self.state = state
        self.options = options or AmoOptions()
        self.ctx = Context(state, self.options)
        self.tokens = TokenRegistry(state, self.options)
        self.limiter = Limiter(self.options)
        self._host, self._port = host, port
        self._state_path = state_path
        self._persist_debounce_s = persist_debounce_s
        self._persister: StatePersister | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._meta = threading.Lock()
        self._storm = 0
        self._seed_rngs(self.options.seed)
        self.reset_stats()

    # ------------------------------------------------------------------ lifecycle
    @property
    def lock(self) -> threading.RLock:
        return self.state.lock

    @property
    def long_lived_token(self) -> str | None:
        return self.options.long_lived_token

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> AmoSandboxServer:
        httpd = ThreadingHTTPServer((self._host, self._port), _HttpHandler)
        httpd.daemon_threads = True
        httpd.sandbox = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.tokens.api_domain = self.base_url.split("://", 1)[1]
        self.tokens.register_initial()
        if self._state_path is not None:
            self._persister = StatePersister(self.state, self._state_path, self._persist_debounce_s)
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._persister is not None:
            self._persister.close()
            self._persister = None

    def save(self) -> None:
        """Flush the state file now (no-op without `state_path`)."""
        if self._persister is not None:
            self._persister.flush()

    def __enter__(self) -> AmoSandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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

    def set_faults(self, **changes: Any) -> None:
        """Change options at runtime, e.g. fail_rate_5xx=0.2, latency_ms=50, drop_rate=0.1,
        rate_per_second=3, block_after_429=2, block_s=1; `storm_429=N` answers the next N
        requests with 429; `seed=S` restarts the fault sequence."""
        with self._meta:
            for key, value in changes.items():
                if key == "storm_429":
                    self._storm = int(value)
                elif key == "seed":
                    self.options.seed = int(value)
                    self._seed_rngs(int(value))
                elif hasattr(self.options, key):
                    setattr(self.options, key, value)
                else:
                    raise TypeError(f"unknown option {key!r}")

    def _seed_rngs(self, seed: int) -> None:
        # one stream per fault family: switching one on never shifts another's sequence
        self._rng = random.Random(seed)
        self._apply_rng = random.Random(f"{seed}:drop-after-apply")

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset: requests, writes, by_route, 401, 403, 429, 5xx,
        dropped, dropped_after_apply."""
        with self._meta:
            out = dict(self._stats)
            out["by_route"] = dict(self._stats["by_route"])
            return out

    def reset_stats(self) -> None:
        with self._meta:
            self._stats: dict[str, Any] = {
                "requests": 0,
                "writes": 0,
                "by_route": {},
                "401": 0,
                "403": 0,
                "429": 0,
                "5xx": 0,
                "dropped": 0,
                "dropped_after_apply": 0,
            }

    def _count(self, name: str) -> None:
        with self._meta:
            self._stats[name] += 1

    # ------------------------------------------------------------------ request pipeline
    def handle(self, req: Request) -> Response:
        """Answer one request (raises Drop to close the connection without an answer)."""
        opts = self.options
        path = req.path.rstrip("/") or "/"
        req.path = path
        with self._meta:
            self._stats["requests"] += 1
            key = route_key(req.method, path)
            self._stats["by_route"][key] = self._stats["by_route"].get(key, 0) + 1
            # always the same draws per request, so a seed fixes the whole fault sequence
            u_fail, u_drop, u_code = self._rng.random(), self._rng.random(), self._rng.random()
            u_applied = self._apply_rng.random()
            storm = self._storm > 0
            if storm:
                self._storm -= 1
        if opts.latency_ms:
            time.sleep(opts.latency_ms / 1000)
        if u_drop < opts.drop_rate:
            self._count("dropped")
            raise Drop()
        if self.limiter.blocked():
            self._count("403")
            return html_page(403)
        if storm:
            return self._too_many()
        if u_fail < opts.fail_rate_5xx:
            self._count("5xx")
            return server_error(u_code)
        if path == TOKEN_PATH:
            if req.method != "POST":
                return error_response(ApiError(405, "Method not allowed"))
            return self.tokens.token_endpoint(req)
        if not path.startswith("/api/v4/"):
            return error_response(ApiError(404, "Not found"))
        if not self.limiter.admit():
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
        except ApiError as exc:
            response = error_response(exc)
        if is_write and response.status < 300 and u_applied < opts.drop_after_apply_rate:
            # the write landed (state changed, persisted as usual) but its answer is lost
            self._count("dropped_after_apply")
            raise Drop()
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


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def version_string(self) -> str:
        return "nginx"

    def _dispatch(self) -> None:
        sandbox: AmoSandboxServer = self.server.sandbox  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or sandbox.base_url.split("://", 1)[1]
        req = Request(
            self.command,
            parts.path,
            parse_qsl(parts.query, keep_blank_values=True),
            self.headers,
            body,
            f"http://{host}",
        )
        try:
            response = sandbox.handle(req)
        except Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if response.raw is not None:
            payload = response.raw
        elif response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        self.send_response(response.status)
        if payload:
            kind = response.content_type
            if kind in (PROBLEM, "application/hal+json", "application/json"):
                kind += "; charset=utf-8"
            self.send_header("Content-Type", kind)
        if response.status != 204:
            self.send_header("Content-Length", str(len(payload)))
        for key, value in (response.headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        sandbox: AmoSandboxServer = self.server.sandbox  # type: ignore[attr-defined]
        if sandbox.options.log_requests:
            super().log_message(format, *args)
