"""A local emulator of HubSpot's CRM API over real HTTP (stdlib `ThreadingHTTPServer`, loopback).

Emulates, as HubSpot's public API documentation describes them: CRM objects (list, get, create,
update, archive, batch read/create/update/archive, search with HubSpot's limits and its 10,000
result cap), properties and property groups, v4 associations, owners, deal pipelines, account
details, OAuth token refresh, token introspection (private-app token info and OAuth access-token
metadata, both listing the granted scopes), bearer auth errors, the ten-secondly and secondly rate
limits with their headers, and injectable faults (5xx, latency, 429 storms, dropped connections,
answers lost after a write was applied).

    with SandboxServer(state, SandboxOptions(token="t"), port=0) as srv:
        requests.get(srv.base_url + "/crm/v3/objects/contacts",
                     headers={"Authorization": f"Bearer {srv.token}"})

Modules: `transport` (HTTP, requests and answers), `routing`, `auth` (tokens, scopes), `limits`
(rate limits, faults), `common` (options, shared helpers) and one per API family: `api_objects`,
`api_search`, `api_associations`, `api_properties`, `api_account` (owners, pipelines, account),
`api_oauth`. This module assembles them into `SandboxServer`.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.hubspot.api_account import AccountApi
from sandbox.hubspot.api_associations import AssociationsApi
from sandbox.hubspot.api_oauth import OAuthApi
from sandbox.hubspot.api_objects import ObjectsApi
from sandbox.hubspot.api_properties import PropertiesApi
from sandbox.hubspot.api_search import SearchApi
from sandbox.hubspot.auth import TOKEN_ENDPOINTS, AuthMixin
from sandbox.hubspot.common import SandboxOptions
from sandbox.hubspot.limits import LimitsMixin
from sandbox.hubspot.routing import match, normalize, route_key
from sandbox.hubspot.state import HubSpotState, StatePersister
from sandbox.hubspot.transport import ApiError, Drop, Handler, Request, Response

__all__ = ["SandboxOptions", "SandboxServer"]


class SandboxServer(
    ObjectsApi,
    SearchApi,
    AssociationsApi,
    PropertiesApi,
    AccountApi,
    OAuthApi,
    AuthMixin,
    LimitsMixin,
):
    """The HubSpot emulator. Use as a context manager or call `start()` / `stop()`.

    `state_path`: when given, the state is saved there (atomically) at most once per
    `persist_debounce_s` after mutations, and on stop.
    """

    def __init__(
        self,
        state: HubSpotState,
        options: SandboxOptions | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        state_path: str | Path | None = None,
        persist_debounce_s: float = 1.0,
    ) -> None:
        self.state = state
        self.options = options or SandboxOptions()
        self._host = host
        self._port = port
        self._state_path = state_path
        self._persist_debounce_s = persist_debounce_s
        self._persister: StatePersister | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._meta = threading.Lock()
        self._seed_rngs(self.options.seed)
        self._storm = 0
        self._burst: collections.deque[float] = collections.deque()
        self._search: collections.deque[float] = collections.deque()
        self._daily = 0
        self._oauth: dict[str, float] = {}  # access token -> expiry (epoch s)
        self.reset_stats()

    # ------------------------------------------------------------------ lifecycle
    @property
    def lock(self) -> threading.RLock:
        return self.state.lock

    @property
    def token(self) -> str:
        return self.options.token

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        httpd = ThreadingHTTPServer((self._host, self._port), Handler)
        httpd.daemon_threads = True
        httpd.sandbox = self  # type: ignore[attr-defined]
        self._httpd = httpd
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

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ control
    def set_faults(self, **changes: Any) -> None:
        """Change options at runtime, e.g. fail_rate_5xx=0.2, latency_ms=50, drop_rate=0.1,
        search_lag_s=2, burst_limit=5; `storm_429=N` answers the next N requests with 429;
        `seed=S` restarts the fault sequence."""
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
        # Separate streams per fault family: adding a family never shifts another's sequence.
        self._rng = random.Random(seed)
        self._apply_rng = random.Random(f"{seed}:drop-after-apply")
        self._row_rng = random.Random(f"{seed}:row-errors")
        self._jitter_rng = random.Random(f"{seed}:latency-jitter")

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset: requests, writes, by_route, 429, 5xx, dropped,
        dropped_after_apply, row_errors, 401, 403."""
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
                "429": 0,
                "5xx": 0,
                "dropped": 0,
                "dropped_after_apply": 0,
                "row_errors": 0,
                "401": 0,
                "403": 0,
            }

    def expire_oauth_tokens(self) -> None:
        """Make every issued OAuth access token expired (for refresh tests)."""
        with self._meta:
            past = time.time() - 1
            self._oauth = {t: min(exp, past) for t, exp in self._oauth.items()}

    # ------------------------------------------------------------------ request pipeline
    def handle(self, req: Request) -> Response:
        """Answer one request (raises Drop to close the connection without an answer)."""
        opts = self.options
        normalized, flavor = normalize(req.path)
        route = match(req.method, normalized)
        with self._meta:
            self._stats["requests"] += 1
            key = route_key(req.method, normalized, route)
            self._stats["by_route"][key] = self._stats["by_route"].get(key, 0) + 1
            # always three draws per request, so a seed fixes the whole fault sequence
            u_fail, u_drop, u_code = self._rng.random(), self._rng.random(), self._rng.random()
            u_applied = self._apply_rng.random()  # one draw per request, on its own stream
            u_jitter = self._jitter_rng.random()
            storm = self._storm > 0
            if storm:
                self._storm -= 1
        delay_ms = opts.latency_ms + u_jitter * opts.latency_jitter_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if u_drop < opts.drop_rate:
            self._count("dropped")
            raise Drop()
        if storm:
            self._count("429")
            return self._rate_limited("TEN_SECONDLY_ROLLING", 1)
        if u_fail < opts.fail_rate_5xx:
            self._count("5xx")
            return self._server_error(u_code)
        if route is None:
            return self._error(
                ApiError(404, "OBJECT_NOT_FOUND", f"No route for {req.method} {req.path}")
            )
        _, _, handler, is_write, is_search = route[0]
        args = route[1]
        if handler in TOKEN_ENDPOINTS:
            return self._guard(lambda: getattr(self, handler)(req, *args))
        auth = self._authenticate(req)
        if auth is not None:
            self._count("401")
            return auth
        limited, headers = self._rate_limit(is_search)
        if limited is not None:
            self._count("429")
            return limited
        denied = self._check_scopes(handler, args)
        if denied is not None:
            self._count("403")
            return denied
        if is_write:
            self._count("writes")
        response = self._guard(lambda: getattr(self, "h_" + handler)(req, flavor, *args))
        if is_write and response.status < 300 and u_applied < opts.drop_after_apply_rate:
            # the write landed (state changed, persisted as usual) but its answer is lost
            self._count("dropped_after_apply")
            raise Drop()
        if headers:
            response.headers = {**(response.headers or {}), **headers}
        return response

    def _guard(self, fn: Any) -> Response:
        try:
            with self.state.lock:
                return fn()
        except ApiError as exc:
            return self._error(exc)

    def _count(self, name: str) -> None:
        with self._meta:
            self._stats[name] += 1
