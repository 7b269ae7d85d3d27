"""A local emulator of HubSpot's CRM API over real HTTP (stdlib `ThreadingHTTPServer`, loopback).

Emulates, as HubSpot's public API documentation describes them: CRM objects (list, get, create,
update, archive, batch read/create/update/archive, search with HubSpot's limits and its 10,000
result cap), properties and property groups, v4 associations, owners, deal pipelines, account
details, OAuth token refresh, token introspection (private-app token info and OAuth access-token
metadata, both listing the granted scopes), bearer auth errors, the ten-secondly and secondly rate
limits with their headers, and injectable faults (5xx, latency, 429 storms, dropped connections,
answers lost after a write was applied), and property history with each change's source
(`propertiesWithHistory`; `edit_as_user` / `edit_as_integration` change values as a rep or another
app would).

    with SandboxServer(state, SandboxOptions(token="t"), port=0) as srv:
        requests.get(srv.base_url + "/crm/v3/objects/contacts",
                     headers={"Authorization": f"Bearer {srv.token}"})

Modules: `transport` (requests, errors, its flavour of `sandbox.http`'s handler), `routing`,
`auth` (tokens, scopes), `limits` (rate limits, faults), `common` (options, shared helpers) and
one per API family: `api_objects`, `api_search`, `api_associations`, `api_properties`,
`api_account` (owners, pipelines, account), `api_oauth`. This module assembles them, on
`sandbox.http.EmulatorServer` (lifecycle, state file, fault draws, counters), into
`SandboxServer`.
"""

from __future__ import annotations

import collections
import random
import time
from pathlib import Path
from typing import Any

from sandbox.http import EmulatorServer
from sandbox.hubspot.api_account import AccountApi
from sandbox.hubspot.api_associations import AssociationsApi
from sandbox.hubspot.api_history import HistoryMixin
from sandbox.hubspot.api_oauth import OAuthApi
from sandbox.hubspot.api_objects import ObjectsApi
from sandbox.hubspot.api_properties import PropertiesApi
from sandbox.hubspot.api_search import SearchApi
from sandbox.hubspot.auth import TOKEN_ENDPOINTS, AuthMixin
from sandbox.hubspot.common import SandboxOptions
from sandbox.hubspot.limits import LimitsMixin
from sandbox.hubspot.routing import match, normalize, route_key
from sandbox.hubspot.state import HubSpotState
from sandbox.hubspot.transport import ApiError, Handler, Request, Response

__all__ = ["SandboxOptions", "SandboxServer"]


class SandboxServer(
    ObjectsApi,
    SearchApi,
    AssociationsApi,
    PropertiesApi,
    AccountApi,
    OAuthApi,
    HistoryMixin,
    AuthMixin,
    LimitsMixin,
    EmulatorServer[HubSpotState, SandboxOptions],
):
    """The HubSpot emulator. Use as a context manager or call `start()` / `stop()`.

    `state_path`: when given, the state is saved there (atomically) at most once per
    `persist_debounce_s` after mutations, and on stop. Besides the shared faults, `set_faults`
    takes e.g. search_lag_s=2, burst_limit=5; `stats()` also counts row_errors.
    """

    handler_class = Handler
    counters = ("429", "5xx", "dropped", "dropped_after_apply", "row_errors", "401", "403")

    def __init__(
        self,
        state: HubSpotState,
        options: SandboxOptions | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        state_path: str | Path | None = None,
        persist_debounce_s: float = 1.0,
    ) -> None:
        super().__init__(
            state, options or SandboxOptions(), port, host, state_path, persist_debounce_s
        )
        self._burst: collections.deque[float] = collections.deque()
        self._search: collections.deque[float] = collections.deque()
        self._daily = 0
        self._oauth: dict[str, float] = {}  # access token -> expiry (epoch s)

    @property
    def token(self) -> str:
        return self.options.token

    def _seed_rngs(self, seed: int) -> None:
        super()._seed_rngs(seed)
        self._row_rng = random.Random(f"{seed}:row-errors")

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
        key = route_key(req.method, normalized, route)
        draws = self._begin(key, opts.latency_jitter_ms)
        if draws.storm:
            self._count("429")
            return self._rate_limited("TEN_SECONDLY_ROLLING", 1)
        if draws.fail < opts.fail_rate_5xx:
            self._count("5xx")
            return self._server_error(draws.code)
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
        self._lose_answer(draws, is_write, response)
        if headers:
            response.headers = {**(response.headers or {}), **headers}
        return response

    def _guard(self, fn: Any) -> Response:
        try:
            with self.state.lock:
                return fn()
        except ApiError as exc:
            return self._error(exc)
