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
"""

from __future__ import annotations

import bisect
import collections
import fnmatch
import json
import math
import random
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from sandbox.hubspot import schema
from sandbox.hubspot.state import (
    HubSpotState,
    Record,
    StatePersister,
    iso_ms,
    now_ms,
    parse_for_search,
    parse_ms,
)

LIST_LIMIT_MAX = 100
BATCH_MAX = 100
SEARCH_LIMIT_MAX = 200
SEARCH_RESULT_CAP = 10_000
ASSOC_LIST_MAX = 500
ASSOC_BATCH_MAX = 1000
OWNERS_LIMIT_MAX = 500

OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}


@dataclass
class SandboxOptions:
    """Behaviour of a sandbox server; faults and limits can change at runtime (`set_faults`)."""

    token: str = "sandbox-token"
    burst_limit: int = 190
    burst_window_s: float = 10.0
    search_per_second: int = 5
    search_lag_s: float = 0.0
    fail_rate_5xx: float = 0.0
    latency_ms: int = 0
    # plus a seeded uniform 0..latency_jitter_ms per request, before it is counted for the limits
    latency_jitter_ms: int = 0
    drop_rate: float = 0.0
    # a state-changing request is applied, then the connection closes without an answer
    drop_after_apply_rate: float = 0.0
    # each existing input of a batch update fails alone, transiently, in a 207 (see README)
    row_error_rate: float = 0.0
    seed: int = 1
    daily_limit: int = 625_000
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "sandbox-refresh-token"
    oauth_code: str = "sandbox-auth-code"
    oauth_token_ttl_s: float = 1800.0
    # scopes granted to every token (None: all); other calls answer 403 MISSING_SCOPES
    scopes: tuple[str, ...] | None = None
    log_requests: bool = False

    def __repr__(self) -> str:  # secrets stay out of reprs
        shown = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("token", "client_secret", "refresh_token", "oauth_code")
        }
        return f"SandboxOptions({shown})"


class _Drop(Exception):
    """Close the connection without answering."""


class ApiError(Exception):
    """An HTTP error answer with HubSpot's JSON error body."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        }


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] | None = None
    raw: bytes | None = None
    content_type: str = "application/json;charset=utf-8"


def _validation_message(errors: list[dict[str, Any]]) -> str:
    return "Property values were not valid: " + json.dumps(errors, ensure_ascii=False)


def _validation_error(errors: list[dict[str, Any]], status: int = 400, **extra: Any) -> ApiError:
    return ApiError(
        status,
        "VALIDATION_ERROR",
        _validation_message(errors),
        errors=[
            {"message": e["message"], "code": e["error"], "context": {"propertyName": [e["name"]]}}
            for e in errors
        ],
        **extra,
    )


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError as exc:
        raise ApiError(
            400, "VALIDATION_ERROR", f"Invalid value for {name}: {values[-1]!r}"
        ) from exc


def _bool_param(query: dict[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[-1].lower() == "true"


def _list_param(query: dict[str, list[str]], name: str) -> list[str] | None:
    values = query.get(name)
    if values is None:
        return None
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


_PREFIXES = [
    (re.compile(r"^/crm/v3/objects(?=/|$)"), "objects", "v3"),
    (re.compile(r"^/crm/v4/objects(?=/|$)"), "objects", "v4"),
    (re.compile(r"^/crm/objects/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "objects", "dated"),
    (re.compile(r"^/crm/associations/\d{4}-\d{2}(?:-beta)?/objects(?=/|$)"), "objects", "dated"),
    (re.compile(r"^/crm/v4/associations(?=/|$)"), "associations", "v4"),
    (re.compile(r"^/crm/associations/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "associations", "dated"),
    (re.compile(r"^/crm/v3/properties(?=/|$)"), "properties", "v3"),
    (re.compile(r"^/crm/properties/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "properties", "dated"),
    (re.compile(r"^/crm/v3/owners(?=/|$)"), "owners", "v3"),
    (re.compile(r"^/crm/owners/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "owners", "dated"),
    (re.compile(r"^/crm/v3/pipelines(?=/|$)"), "pipelines", "v3"),
    (re.compile(r"^/crm/pipelines/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "pipelines", "dated"),
    (re.compile(r"^/account-info/(?:v3|\d{4}-\d{2})/details$"), "account", "v3"),
    (re.compile(r"^/oauth/(?:v1|v3|\d{4}-\d{2})/token$"), "oauth/token", "v3"),
    (re.compile(r"^/oauth/v2/private-apps/get/access-token-info$"), "oauth/token-info", "v2"),
    (re.compile(r"^/oauth/v1/access-tokens(?=/|$)"), "oauth/access-tokens", "v1"),
]

S = r"([^/]+)"
# (method, pattern over the normalized path, handler, is_write, is_search)
_ROUTES: list[tuple[str, re.Pattern[str], str, bool, bool]] = [
    (m, re.compile(p), h, w, s)
    for m, p, h, w, s in [
        ("POST", r"^oauth/token$", "oauth_token", False, False),
        ("POST", r"^oauth/token-info$", "private_app_token_info", False, False),
        ("GET", rf"^oauth/access-tokens/{S}$", "access_token_info", False, False),
        ("GET", r"^account$", "account", False, False),
        ("GET", r"^owners$", "owners_list", False, False),
        ("GET", rf"^owners/{S}$", "owner_get", False, False),
        ("GET", rf"^pipelines/{S}$", "pipelines_list", False, False),
        ("GET", rf"^pipelines/{S}/{S}$", "pipeline_get", False, False),
        ("GET", rf"^pipelines/{S}/{S}/stages$", "pipeline_stages", False, False),
        ("GET", rf"^properties/{S}/groups$", "groups_list", False, False),
        ("POST", rf"^properties/{S}/groups$", "group_create", True, False),
        ("GET", rf"^properties/{S}/groups/{S}$", "group_get", False, False),
        ("PATCH", rf"^properties/{S}/groups/{S}$", "group_update", True, False),
        ("GET", rf"^properties/{S}$", "properties_list", False, False),
        ("POST", rf"^properties/{S}$", "property_create", True, False),
        ("GET", rf"^properties/{S}/{S}$", "property_get", False, False),
        ("PATCH", rf"^properties/{S}/{S}$", "property_update", True, False),
        ("DELETE", rf"^properties/{S}/{S}$", "property_archive", True, False),
        ("POST", rf"^objects/{S}/search$", "search", False, True),
        ("POST", rf"^objects/{S}/batch/read$", "batch_read", False, False),
        ("POST", rf"^objects/{S}/batch/create$", "batch_create", True, False),
        ("POST", rf"^objects/{S}/batch/update$", "batch_update", True, False),
        ("POST", rf"^objects/{S}/batch/archive$", "batch_archive", True, False),
        ("GET", rf"^objects/{S}/{S}/associations/{S}$", "object_associations", False, False),
        (
            "PUT",
            rf"^objects/{S}/{S}/associations/default/{S}/{S}$",
            "associate_default",
            True,
            False,
        ),
        ("PUT", rf"^objects/{S}/{S}/associations/{S}/{S}(?:/{S})?$", "associate", True, False),
        ("DELETE", rf"^objects/{S}/{S}/associations/{S}/{S}(?:/{S})?$", "unassociate", True, False),
        ("GET", rf"^objects/{S}$", "list", False, False),
        ("POST", rf"^objects/{S}$", "create", True, False),
        ("GET", rf"^objects/{S}/{S}$", "get", False, False),
        ("PATCH", rf"^objects/{S}/{S}$", "update", True, False),
        ("DELETE", rf"^objects/{S}/{S}$", "archive", True, False),
        ("POST", rf"^associations/{S}/{S}/batch/read$", "assoc_batch_read", False, False),
        ("POST", rf"^associations/{S}/{S}/batch/create$", "assoc_batch_create", True, False),
        (
            "POST",
            rf"^associations/{S}/{S}/batch/associate/default$",
            "assoc_batch_default",
            True,
            False,
        ),
    ]
]
# Path segments that are ids in by_route keys.
_ID_ARGS = {
    "access_token_info": (0,),  # the token itself: never in stats
    "owner_get": (0,),
    "group_get": (1,),
    "group_update": (1,),
    "property_get": (1,),
    "property_update": (1,),
    "property_archive": (1,),
    "object_associations": (1,),
    "associate_default": (1, 3),
    "associate": (1, 3, 4),
    "unassociate": (1, 3, 4),
    "get": (1,),
    "update": (1,),
    "archive": (1,),
    "pipeline_get": (1,),
    "pipeline_stages": (1,),
}

_HTML_5XX = (
    "<html><head><title>{code} {reason}</title></head><body><center><h1>{code} {reason}"
    "</h1></center><hr><center>sandbox-edge</center></body></html>"
)


# Emulator-chosen scope rules, after the reference's table: activities use the contacts scopes;
# property definitions need the schema scope (a read also passes with the object read scope);
# account details need none. Each inner tuple is "any one of these".
_SCOPE_FAMILY = {t: "contacts" for t in schema.ENGAGEMENT_TYPES} | {
    "contacts": "contacts",
    "deals": "deals",
    "companies": "companies",
}
_OBJECT_READS = {"list", "get", "search", "batch_read", "object_associations", "assoc_batch_read"}
_PROPERTY_READS = {"properties_list", "property_get", "groups_list", "group_get"}


# Endpoints that authenticate by what they are sent (a form or the token itself), not by a bearer
# token, and need no scope.
_TOKEN_ENDPOINTS = ("oauth_token", "private_app_token_info", "access_token_info")
_UNSCOPED = {*_TOKEN_ENDPOINTS, "account"}
# What token introspection lists when `SandboxOptions.scopes` is None (every scope the emulator
# checks, plus `oauth` and the optional e-mail scope).
ALL_SCOPES = (
    "oauth",
    *(
        f"crm.{kind}.{family}.{access}"
        for family in ("contacts", "companies", "deals")
        for kind in ("objects", "schemas")
        for access in ("read", "write")
    ),
    "crm.objects.owners.read",
    "sales-email-read",
)
PRIVATE_APP_ID = 3_000_001  # the app id token introspection reports (private app and OAuth app)


def _required_scopes(handler: str, args: tuple[str, ...]) -> list[tuple[str, ...]]:
    if handler in _UNSCOPED:
        return []
    if handler in ("owners_list", "owner_get"):
        return [("crm.objects.owners.read",)]
    if handler.startswith("pipeline"):
        family = _SCOPE_FAMILY.get(schema.resolve_type(args[0]) or "", "deals")
        return [(f"crm.objects.{family}.read",)]
    types = [schema.resolve_type(a) for a in args[:1]]
    if handler in ("object_associations", "associate", "unassociate", "associate_default"):
        types.append(schema.resolve_type(args[2]) if len(args) > 2 else None)
    elif handler.startswith("assoc_"):
        types.append(schema.resolve_type(args[1]) if len(args) > 1 else None)
    families = list(dict.fromkeys(_SCOPE_FAMILY[t] for t in types if t in _SCOPE_FAMILY))
    if handler in _PROPERTY_READS:
        return [(f"crm.schemas.{f}.read", f"crm.objects.{f}.read") for f in families]
    if handler.startswith(("property_", "group_")):
        return [(f"crm.schemas.{f}.write",) for f in families]
    access = "read" if handler in _OBJECT_READS else "write"
    return [(f"crm.objects.{f}.{access}",) for f in families]


class _Request:
    def __init__(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}") from exc


class SandboxServer:
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
        httpd = ThreadingHTTPServer((self._host, self._port), _Handler)
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
    def handle(self, req: _Request) -> Response:
        """Answer one request (raises _Drop to close the connection without an answer)."""
        opts = self.options
        normalized, flavor = self._normalize(req.path)
        route = self._match(req.method, normalized)
        with self._meta:
            self._stats["requests"] += 1
            key = self._route_key(req.method, normalized, route)
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
            raise _Drop()
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
        if handler in _TOKEN_ENDPOINTS:
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
            raise _Drop()
        if headers:
            response.headers = {**(response.headers or {}), **headers}
        return response

    def _guard(self, fn: Any) -> Response:
        try:
            with self.state.lock:
                return fn()
        except ApiError as exc:
            return self._error(exc)

    @staticmethod
    def _error(exc: ApiError) -> Response:
        return Response(exc.status, exc.body)

    def _count(self, name: str) -> None:
        with self._meta:
            self._stats[name] += 1

    @staticmethod
    def _normalize(path: str) -> tuple[str, str]:
        path = path.rstrip("/") or "/"
        for pattern, name, flavor in _PREFIXES:
            m = pattern.match(path)
            if m:
                return name + path[m.end() :], flavor
        return path, "v3"

    @staticmethod
    def _match(method: str, normalized: str) -> tuple[tuple, tuple[str, ...]] | None:
        for route in _ROUTES:
            if route[0] != method:
                continue
            m = route[1].match(normalized)
            if m:
                return route, tuple(g for g in m.groups() if g is not None)
        return None

    @staticmethod
    def _route_key(method: str, normalized: str, route: tuple | None) -> str:
        if route is None:
            return f"{method} {normalized}"
        parts = normalized.split("/")
        handler = route[0][2]
        args = list(route[1])
        for i in _ID_ARGS.get(handler, ()):
            if i < len(args):
                args[i] = "{id}"
        # rebuild: replace captured segments, in order, by their (possibly masked) values
        out, k = [], 0
        originals = route[1]
        for seg in parts:
            if k < len(originals) and seg == originals[k]:
                out.append(args[k])
                k += 1
            else:
                out.append(seg)
        return f"{method} {'/'.join(out)}"

    # ------------------------------------------------------------------ auth, limits, faults
    def _authenticate(self, req: _Request) -> Response | None:
        header = req.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token and secrets.compare_digest(token, self.options.token):
            return None
        with self._meta:
            expiry = self._oauth.get(token) if token else None
        if expiry is not None:
            now = time.time()
            if now < expiry:
                return None
            ago = int(now - expiry)
            return self._error(
                ApiError(
                    401,
                    "EXPIRED_AUTHENTICATION",
                    f"The OAuth token used to make this call expired {ago} second(s) ago.",
                    context={"expire time": [iso_ms(expiry * 1000)]},
                )
            )
        return self._error(
            ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        )

    def _check_scopes(self, handler: str, args: tuple[str, ...]) -> Response | None:
        granted = self.options.scopes
        if granted is None:
            return None
        for alternatives in _required_scopes(handler, args):
            if not set(alternatives) & set(granted):
                return self._error(
                    ApiError(
                        403,
                        "MISSING_SCOPES",
                        "This app hasn't been granted all required scopes to make this call. "
                        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                        errors=[
                            {
                                "message": "One or more of the following scopes are required.",
                                "context": {"requiredScopes": list(alternatives)},
                            }
                        ],
                        links={"scopes": "https://developers.hubspot.com/scopes"},
                    )
                )
        return None

    def _rate_limit(self, is_search: bool) -> tuple[Response | None, dict[str, str]]:
        opts = self.options
        now = time.monotonic()
        with self._meta:
            if is_search:
                window = self._search
                while window and window[0] <= now - 1.0:
                    window.popleft()
                if len(window) >= opts.search_per_second:
                    return self._rate_limited("SECONDLY", 1), {}
                window.append(now)
                return None, {}
            window = self._burst
            while window and window[0] <= now - opts.burst_window_s:
                window.popleft()
            if len(window) >= opts.burst_limit:
                wait = max(1, math.ceil(window[0] + opts.burst_window_s - now))
                return self._rate_limited("TEN_SECONDLY_ROLLING", wait), {}
            window.append(now)
            self._daily += 1
            headers = {
                "X-HubSpot-RateLimit-Max": str(opts.burst_limit),
                "X-HubSpot-RateLimit-Remaining": str(max(0, opts.burst_limit - len(window))),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(opts.burst_window_s * 1000)),
                "X-HubSpot-RateLimit-Daily": str(opts.daily_limit),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, opts.daily_limit - self._daily)),
            }
            return None, headers

    def _rate_limited(self, policy: str, retry_after: int) -> Response:
        if policy == "SECONDLY":
            message = "You have reached your secondly limit."
        else:
            message = "You have reached your ten_secondly_rolling limit."
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "groupName": f"publicapi:private-app-api-calls-{policy.lower()}:sandbox",
        }
        return Response(429, body, headers={"Retry-After": str(retry_after)})

    @staticmethod
    def _server_error(u: float) -> Response:
        code, reason = [
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
        ][min(2, int(u * 3))]
        if code == 503:
            body = {
                "status": "error",
                "message": "The service is temporarily unavailable, please try again.",
                "correlationId": str(uuid.uuid4()),
                "category": "SERVICE_UNAVAILABLE",
            }
            return Response(code, body)
        html = _HTML_5XX.format(code=code, reason=reason).encode()
        return Response(code, raw=html, content_type="text/html")

    # ------------------------------------------------------------------ helpers
    def _type(self, name: str) -> str:
        obj_type = schema.resolve_type(name)
        if obj_type is None:
            raise ApiError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
        return obj_type

    def _lag_ms(self) -> int:
        return int(self.options.search_lag_s * 1000)

    def _after_write(self, rec: Record, now: int, created: bool = False) -> None:
        """Make a write visible to search after the configured lag."""
        lag = self._lag_ms()
        if lag <= 0:
            self.state.reindex(rec, now)
            return
        if created:
            rec.indexed = None
            rec.pending = []
        rec.pending.append((now + lag, dict(rec.props)))

    def _names(self, obj_type: str, requested: list[str] | None) -> list[str]:
        if not requested:
            return list(schema.DEFAULT_PROPERTIES[obj_type])
        names = list(dict.fromkeys(requested))
        for extra in schema.ALWAYS_PROPERTIES[obj_type]:
            if extra not in names:
                names.append(extra)
        return names

    def _render(
        self,
        obj_type: str,
        rec: Record,
        names: list[str] | None,
        associations: list[str] | None = None,
    ) -> dict[str, Any]:
        out = rec.to_api(names if names is not None else sorted(rec.props))
        if associations:
            assoc_out: dict[str, Any] = {}
            for name in associations:
                to_type = schema.resolve_type(name)
                if to_type is None:
                    continue
                links = self.state.associations(obj_type, rec.id, to_type)
                if links:
                    assoc_out[to_type] = {
                        "results": [
                            {"id": str(tid), "type": schema.association_label(t)}
                            for tid, types in links.items()
                            for _, t in types
                            if t in schema.ASSOCIATION_TYPES
                        ]
                    }
            if assoc_out:
                out["associations"] = assoc_out
        return out

    def _find(self, obj_type: str, obj_id: str, *, archived: bool = False) -> Record | None:
        rec = self.state.get(obj_type, obj_id)
        if rec is None or rec.archived != archived:
            if rec is not None and rec.archived and not archived and obj_type == "contacts":
                survivor = self.state.merged_into.get(rec.id)
                if survivor is not None:
                    return self._find(obj_type, str(survivor))
            return None
        return rec

    @staticmethod
    def _not_found(obj_id: str) -> ApiError:
        return ApiError(
            404,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
            context={"id": [obj_id]},
        )

    def _link(self, base: str, after: str) -> dict[str, Any]:
        return {"next": {"after": after, "link": f"{self.base_url}{base}?after={after}"}}

    @staticmethod
    def _batch(results: list[Any], errors: list[dict[str, Any]], started: str) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return Response(207, body)
        return Response(200, body)

    @staticmethod
    def _item_error(
        category: str, message: str, context: dict[str, list[str]], **extra: Any
    ) -> dict:
        return {
            "status": "error",
            "category": category,
            "message": message,
            "context": context,
            **extra,
        }

    def _validate_associations(self, obj_type: str, raw: Any) -> list[tuple[str, int, int, str]]:
        """Inline `associations` of a create -> [(to type, to id, type id, category)]."""
        out = []
        for item in raw or []:
            try:
                to_id = str(item["to"]["id"])
                types = item["types"]
            except (KeyError, TypeError) as exc:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"Invalid association input: {item}"
                ) from exc
            for spec in types:
                category = spec.get("associationCategory", "HUBSPOT_DEFINED")
                type_id = spec.get("associationTypeId")
                pair = schema.ASSOCIATION_TYPES.get(type_id) if isinstance(type_id, int) else None
                if category != "HUBSPOT_DEFINED" or pair is None or pair[0] != obj_type:
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"Association type {category}/{type_id} is not valid from {obj_type}.",
                    )
                target = self.state.get(pair[1], to_id)
                if target is None or target.archived:
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"One or more associations are invalid: {pair[1]} {to_id} does not exist.",
                    )
                out.append((pair[1], target.id, type_id, category))
        return out

    def _prepare_create(
        self, obj_type: str, item: Any
    ) -> tuple[dict[str, str | None], list[tuple[str, int, int, str]]]:
        if not isinstance(item, dict) or not isinstance(item.get("properties", {}), dict):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input: properties must be an object")
        values, errors = self.state.validate(obj_type, item.get("properties") or {})
        for name in schema.REQUIRED_ON_CREATE.get(obj_type, ()):
            if not values.get(name) and not any(e["name"] == name for e in errors):
                errors.append(
                    {
                        "isValid": False,
                        "message": f'Missing required property "{name}"',
                        "error": "REQUIRED_PROPERTY",
                        "name": name,
                    }
                )
        if errors:
            raise _validation_error(errors)
        email = values.get("email")
        if obj_type == "contacts" and email:
            existing = self.state.email_index.get(email.lower())
            if existing is not None:
                raise ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing}")
        assoc = self._validate_associations(obj_type, item.get("associations"))
        return values, assoc

    def _do_create(
        self,
        obj_type: str,
        values: dict[str, str | None],
        assoc: list[tuple[str, int, int, str]],
        now: int,
    ) -> Record:
        create_prop = schema.CREATE_DATE_PROPERTY[obj_type]
        stamp = values.get(create_prop)
        created = parse_ms(stamp) if stamp else None
        rec = self.state.add(obj_type, dict(values), created or now, now)
        for to_type, to_id, type_id, category in assoc:
            self.state.associate(obj_type, rec.id, to_type, to_id, type_id, category)
        self._after_write(rec, now, created=True)
        return rec

    def _apply_update(
        self, obj_type: str, rec: Record, values: dict[str, str | None], now: int
    ) -> None:
        if self.state.set_props(obj_type, rec, values):
            self.state.touch(obj_type, rec, now, self._lag_ms())

    # ------------------------------------------------------------------ objects
    def h_list(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        limit = _int_param(req.query, "limit", 10)
        if limit > LIST_LIMIT_MAX or limit < 1:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"limit must be between 1 and {LIST_LIMIT_MAX}, got {limit}",
            )
        after = _int_param(req.query, "after", 0)
        archived = _bool_param(req.query, "archived")
        names = self._names(obj_type, _list_param(req.query, "properties"))
        assoc = _list_param(req.query, "associations")
        order = self.state.order[obj_type]
        objs = self.state.objects[obj_type]
        i = bisect.bisect_left(order, after)
        results: list[dict[str, Any]] = []
        next_after: int | None = None
        while i < len(order):
            rec = objs[order[i]]
            i += 1
            if rec.archived != archived:
                continue
            if len(results) == limit:
                next_after = rec.id
                break
            results.append(self._render(obj_type, rec, names, assoc))
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            body["paging"] = self._link(req.path, str(next_after))
        return Response(200, body)

    def h_get(self, req: _Request, flavor: str, type_name: str, obj_id: str) -> Response:
        obj_type = self._type(type_name)
        archived = _bool_param(req.query, "archived")
        id_property_values = req.query.get("idProperty")
        id_property = id_property_values[-1] if id_property_values else None
        rec: Record | None
        if id_property and id_property != "hs_object_id":
            if obj_type != "contacts" or id_property != "email":
                raise ApiError(400, "VALIDATION_ERROR", f"{id_property} is not a unique property")
            found = self.state.email_index.get(obj_id.lower())
            rec = None if found is None else self._find(obj_type, str(found), archived=archived)
        else:
            rec = self._find(obj_type, obj_id, archived=archived)
        if rec is None:
            raise self._not_found(obj_id)
        names = self._names(obj_type, _list_param(req.query, "properties"))
        return Response(
            200, self._render(obj_type, rec, names, _list_param(req.query, "associations"))
        )

    def h_create(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        values, assoc = self._prepare_create(obj_type, req.json())
        rec = self._do_create(obj_type, values, assoc, now_ms())
        return Response(201, self._render(obj_type, rec, None))

    def h_update(self, req: _Request, flavor: str, type_name: str, obj_id: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json()
        rec = self._find(obj_type, obj_id)
        if rec is None:
            raise self._not_found(obj_id)
        values, errors = self.state.validate(obj_type, (body or {}).get("properties") or {})
        if errors:
            raise _validation_error(errors)
        email = values.get("email")
        if obj_type == "contacts" and email:
            other = self.state.email_index.get(email.lower())
            if other is not None and other != rec.id:
                raise ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {other}")
        self._apply_update(obj_type, rec, values, now_ms())
        return Response(200, self._render(obj_type, rec, None))

    def h_archive(self, req: _Request, flavor: str, type_name: str, obj_id: str) -> Response:
        obj_type = self._type(type_name)
        rec = self._find(obj_type, obj_id)
        if rec is not None:
            self.state.archive(obj_type, rec, now_ms())
        return Response(204)

    # ------------------------------------------------------------------ batches
    def _inputs(self, body: Any, limit: int = BATCH_MAX) -> list[Any]:
        inputs = (body or {}).get("inputs")
        if not isinstance(inputs, list):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input: inputs must be a list")
        if len(inputs) > limit:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Batch input of size {len(inputs)} exceeds the limit of {limit} inputs.",
            )
        return inputs

    def h_batch_read(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        started = iso_ms(now_ms())
        body = req.json()
        inputs = self._inputs(body)
        names = self._names(obj_type, body.get("properties"))
        archived = bool(body.get("archived", False)) or _bool_param(req.query, "archived")
        id_property = body.get("idProperty")
        results, errors = [], []
        for item in inputs:
            obj_id = str((item or {}).get("id", ""))
            rec: Record | None
            if id_property == "email" and obj_type == "contacts":
                found = self.state.email_index.get(obj_id.lower())
                rec = None if found is None else self.state.get(obj_type, found)
            else:
                rec = self.state.get(obj_type, obj_id)
            if rec is None or rec.archived != archived:
                errors.append(
                    self._item_error(
                        "OBJECT_NOT_FOUND",
                        f"Could not get some {schema.SINGULAR[obj_type].upper()} objects, they may "
                        "be deleted or not exist. Check that ids are valid.",
                        {"ids": [obj_id]},
                    )
                )
                continue
            results.append(self._render(obj_type, rec, names))
        return self._batch(results, errors, started)

    def h_batch_create(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        started = iso_ms(now_ms())
        inputs = self._inputs(req.json())
        traced = all(isinstance(i, dict) and i.get("objectWriteTraceId") for i in inputs)
        prepared: list[tuple[Any, Any, str | None]] = []
        errors: list[dict[str, Any]] = []
        seen_emails: set[str] = set()
        for item in inputs:
            trace = item.get("objectWriteTraceId") if isinstance(item, dict) else None
            try:
                values, assoc = self._prepare_create(obj_type, item)
                email = (values.get("email") or "").lower()
                if obj_type == "contacts" and email:
                    if email in seen_emails:
                        raise ApiError(409, "CONFLICT", "Contact already exists in this batch.")
                    seen_emails.add(email)
            except ApiError as exc:
                if not traced:
                    raise  # without trace ids HubSpot fails the whole batch on the first error
                context = {"objectWriteTraceId": [str(trace)]}
                extra = {"errors": exc.body["errors"]} if "errors" in exc.body else {}
                errors.append(
                    self._item_error(exc.body["category"], exc.body["message"], context, **extra)
                )
                continue
            prepared.append((values, assoc, trace))
        now = now_ms()
        results = []
        for values, assoc, trace in prepared:
            rec = self._do_create(obj_type, values, assoc, now)
            out = self._render(obj_type, rec, None)
            if trace:
                out["objectWriteTraceId"] = str(trace)
            results.append(out)
        response = self._batch(results, errors, started)
        if not errors:
            response.status = 201
        return response

    def h_batch_update(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        started = iso_ms(now_ms())
        inputs = self._inputs(req.json())
        ids = [str((i or {}).get("id", "")) for i in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ApiError(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {dupes}")
        now = now_ms()
        results, errors = [], []
        for item, obj_id in zip(inputs, ids, strict=True):
            trace = (item or {}).get("objectWriteTraceId")
            context: dict[str, list[str]] = {"ids": [obj_id]}
            if trace:
                context["objectWriteTraceId"] = [str(trace)]
            rec = self.state.get(obj_type, obj_id)  # merged-away ids are not followed here
            if rec is None or rec.archived:
                errors.append(
                    self._item_error(
                        "OBJECT_NOT_FOUND",
                        "Object not found.  objectId are usually numeric.",
                        context,
                    )
                )
                continue
            row_error = self._row_fault()
            if row_error is not None:
                errors.append(self._item_error(*row_error, context))
                continue
            values, verrors = self.state.validate(obj_type, (item or {}).get("properties") or {})
            if verrors:
                err = _validation_error(verrors)
                errors.append(
                    self._item_error(
                        "VALIDATION_ERROR", err.body["message"], context, errors=err.body["errors"]
                    )
                )
                continue
            self._apply_update(obj_type, rec, values, now)
            out = self._render(obj_type, rec, None)
            if trace:
                out["objectWriteTraceId"] = str(trace)
            results.append(out)
        return self._batch(results, errors, started)

    def _row_fault(self) -> tuple[str, str] | None:
        """(category, message) of an emulated transient per-row failure, or None.

        One draw per existing input from the row-error stream; the shapes are the emulator's
        choice (HubSpot documents 423 locks of ~2 s and transient categories, not their rows).
        """
        with self._meta:
            u = self._row_rng.random()
            if u >= self.options.row_error_rate:
                return None
            self._stats["row_errors"] += 1
        if u < self.options.row_error_rate / 2:
            return (
                "LOCKED",
                "This record is locked by another write in progress. Locks will last for 2 "
                "seconds.",
            )
        return ("INTERNAL_ERROR", "An internal error occurred while updating this record.")

    def h_batch_archive(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        now = now_ms()
        for item in self._inputs(req.json()):
            rec = self.state.get(obj_type, str((item or {}).get("id", "")))
            if rec is not None and not rec.archived:
                self.state.archive(obj_type, rec, now)
        return Response(204)

    # ------------------------------------------------------------------ search
    def h_search(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json() or {}
        defs = self.state.properties[obj_type]
        groups = body.get("filterGroups") or []
        if not groups and body.get("filters"):
            groups = [{"filters": body["filters"]}]
        if len(groups) > 5:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Too many filter groups ({len(groups)}); the maximum is 5.",
            )
        total_filters = 0
        compiled: list[list[tuple[str, str, str, Any]]] = []
        for group in groups:
            filters = group.get("filters") or []
            if len(filters) > 6:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Too many filters in a group ({len(filters)}); the maximum is 6.",
                )
            total_filters += len(filters)
            compiled.append([self._compile_filter(defs, f) for f in filters])
        if total_filters > 18:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Too many filters ({total_filters}); the maximum is 18 in total.",
            )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise ApiError(400, "VALIDATION_ERROR", "Only one sort is supported.")
        sort_prop, descending = None, False
        if sorts:
            sort = sorts[0]
            if isinstance(sort, str):
                descending = sort.startswith("-")
                sort_prop = sort.lstrip("-+")
            else:
                sort_prop = sort.get("propertyName")
                descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
            if sort_prop not in defs:
                raise ApiError(400, "VALIDATION_ERROR", f"Unknown sort property {sort_prop!r}.")
        limit = body.get("limit", 10)
        try:
            limit = int(limit)
            after = int(body.get("after") or 0)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "VALIDATION_ERROR", "limit and after must be integers") from exc
        if limit < 0 or limit > SEARCH_LIMIT_MAX:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"limit must be between 0 and {SEARCH_LIMIT_MAX}, got {limit}",
            )
        if after + limit > SEARCH_RESULT_CAP:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Search results are limited to {SEARCH_RESULT_CAP} records: after ({after}) + "
                f"limit ({limit}) is beyond that; narrow the search with filters instead.",
            )
        query = str(body.get("query") or "").strip().lower()
        now = now_ms()
        matched: list[tuple[Record, dict[str, str]]] = []
        for rec in self.state.iter_live(obj_type):
            snap = rec.search_view(now)
            if snap is None:
                continue
            if compiled and not any(all(self._test(rec, snap, f) for f in g) for g in compiled):
                continue
            if query and not any(query in v.lower() for v in snap.values()):
                continue
            matched.append((rec, snap))
        if sort_prop:
            type_ = defs[sort_prop]["type"]
            present = [
                (self._value(rec, snap, sort_prop, type_), rec, snap) for rec, snap in matched
            ]
            missing = [(rec, snap) for v, rec, snap in present if v is None]
            ordered = sorted(
                ((v, rec, snap) for v, rec, snap in present if v is not None),
                key=lambda t: t[0],
                reverse=descending,
            )
            matched = [(rec, snap) for _, rec, snap in ordered] + missing
        names = self._names(obj_type, body.get("properties"))
        page = matched[after : after + limit]
        results = []
        for rec, snap in page:
            out = rec.to_api(names)
            out["properties"] = {n: snap.get(n) for n in names}
            out["updatedAt"] = snap.get("hs_lastmodifieddate", rec.updated_at)
            results.append(out)
        response: dict[str, Any] = {"total": len(matched), "results": results}
        if after + limit < len(matched):
            response["paging"] = {"next": {"after": str(after + limit)}}
        return Response(200, response)

    def _compile_filter(self, defs: dict[str, Any], spec: Any) -> tuple[str, str, str, Any]:
        if not isinstance(spec, dict):
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid filter: {spec!r}")
        prop = spec.get("propertyName")
        op = str(spec.get("operator", "")).upper()
        if op not in OPERATORS:
            raise ApiError(400, "VALIDATION_ERROR", f"Unknown filter operator {op!r}.")
        if prop not in defs:
            raise ApiError(400, "VALIDATION_ERROR", f"Unknown filter property {prop!r}.")
        type_ = defs[prop]["type"]

        def parse(raw: Any) -> Any:
            text = str(raw).lower() if isinstance(raw, bool) else str(raw)
            value = parse_for_search(type_, text)
            if value is None:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"{raw!r} is not a valid {type_} value for {prop}."
                )
            return value

        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            arg: Any = None
        elif op == "BETWEEN":
            arg = (parse(spec.get("value")), parse(spec.get("highValue")))
        elif op in ("IN", "NOT_IN"):
            values = spec.get("values") or []
            # string IN matches lower-cased stored values against the values as given
            if type_ in ("string", "phone_number"):
                arg = {str(v) for v in values}
            else:
                arg = {parse(v) for v in values}
        elif op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            arg = str(spec.get("value", "")).lower()
        else:
            arg = parse(spec.get("value"))
        return prop, op, type_, arg

    @staticmethod
    def _value(rec: Record, snap: dict[str, str], prop: str, type_: str) -> Any:
        raw = snap.get(prop)
        if raw is None or raw == "":
            return None
        cached = rec.parsed.get(prop)
        if cached is not None and cached[0] is raw:
            return cached[1]
        value = parse_for_search(type_, raw)
        rec.parsed[prop] = (raw, value)
        return value

    def _test(self, rec: Record, snap: dict[str, str], flt: tuple[str, str, str, Any]) -> bool:
        prop, op, type_, arg = flt
        value = self._value(rec, snap, prop, type_)
        if op == "HAS_PROPERTY":
            return value is not None
        if op == "NOT_HAS_PROPERTY":
            return value is None
        if op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN") and value is None:
            return True
        if value is None:
            return False
        if op == "EQ":
            return value == arg
        if op == "NEQ":
            return value != arg
        try:
            if op == "LT":
                return value < arg
            if op == "LTE":
                return value <= arg
            if op == "GT":
                return value > arg
            if op == "GTE":
                return value >= arg
            if op == "BETWEEN":
                return arg[0] <= value <= arg[1]
        except TypeError:
            return False
        if op == "IN":
            return value in arg
        if op == "NOT_IN":
            return value not in arg
        text = str(value).lower()
        if "*" in arg:
            hit = fnmatch.fnmatchcase(text, arg) or any(
                fnmatch.fnmatchcase(tok, arg) for tok in re.split(r"[\s,;]+", text)
            )
        else:
            hit = arg in re.findall(r"[\w.@+-]+|\w+", text) or arg in re.findall(r"\w+", text)
        return hit if op == "CONTAINS_TOKEN" else not hit

    # ------------------------------------------------------------------ associations
    def _assoc_results(self, links: dict[int, list[tuple[str, int]]], flavor: str) -> list[dict]:
        return [
            {
                "toObjectId": tid if flavor == "v4" else str(tid),
                "associationTypes": [
                    {"category": cat, "typeId": type_id, "label": None} for cat, type_id in types
                ],
            }
            for tid, types in links.items()
        ]

    def h_object_associations(
        self, req: _Request, flavor: str, type_name: str, obj_id: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        rec = self._find(obj_type, obj_id)
        if rec is None:
            raise self._not_found(obj_id)
        links = self.state.associations(obj_type, rec.id, to_type)
        max_limit = LIST_LIMIT_MAX if flavor == "v3" else ASSOC_LIST_MAX
        limit = _int_param(req.query, "limit", max_limit)
        if limit < 1 or limit > max_limit:
            raise ApiError(400, "VALIDATION_ERROR", f"limit must be between 1 and {max_limit}")
        after = _int_param(req.query, "after", 0)
        ids = [tid for tid in links if tid >= after]
        page, rest = ids[:limit], ids[limit:]
        if flavor == "v3":
            results: list[dict[str, Any]] = [
                {"id": str(tid), "type": schema.association_label(t)}
                for tid in page
                for _, t in links[tid]
                if t in schema.ASSOCIATION_TYPES
            ]
        else:
            results = self._assoc_results({tid: links[tid] for tid in page}, flavor)
        body: dict[str, Any] = {"results": results}
        if rest:
            body["paging"] = self._link(req.path, str(rest[0]))
        return Response(200, body)

    def _associate_pair(
        self, obj_type: str, obj_id: str, to_type: str, to_id: str, specs: list[tuple[str, int]]
    ) -> tuple[Record, Record]:
        rec = self._find(obj_type, obj_id)
        target = self._find(to_type, to_id)
        if rec is None or target is None:
            raise self._not_found(obj_id if rec is None else to_id)
        for category, type_id in specs:
            pair = schema.ASSOCIATION_TYPES.get(type_id)
            if category == "HUBSPOT_DEFINED" and pair != (obj_type, to_type):
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Association type {type_id} is not valid between {obj_type} and {to_type}.",
                )
            self.state.associate(obj_type, rec.id, to_type, target.id, type_id, category)
        return rec, target

    def h_associate(
        self,
        req: _Request,
        flavor: str,
        type_name: str,
        obj_id: str,
        to_name: str,
        to_id: str,
        assoc_type: str | None = None,
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        if assoc_type is not None:  # v3 form: .../{toId}/{associationType}
            type_id = schema.LABEL_TO_TYPE.get(assoc_type)
            if type_id is None and assoc_type.isdigit():
                type_id = int(assoc_type)
            if type_id is None:
                raise ApiError(400, "VALIDATION_ERROR", f"Unknown association type {assoc_type!r}")
            rec, _ = self._associate_pair(
                obj_type, obj_id, to_type, to_id, [("HUBSPOT_DEFINED", type_id)]
            )
            return Response(200, self._render(obj_type, rec, None, [to_type]))
        body = req.json()
        if not isinstance(body, list):
            raise ApiError(400, "VALIDATION_ERROR", "Expected a list of association types")
        specs = [
            (
                str(s.get("associationCategory", "HUBSPOT_DEFINED")),
                int(s.get("associationTypeId", 0)),
            )
            for s in body
        ]
        rec, target = self._associate_pair(obj_type, obj_id, to_type, to_id, specs)
        return Response(
            200,
            {
                "fromObjectTypeId": schema.OBJECT_TYPE_IDS[obj_type],
                "fromObjectId": rec.id,
                "toObjectTypeId": schema.OBJECT_TYPE_IDS[to_type],
                "toObjectId": target.id,
                "labels": [],
            },
        )

    def h_associate_default(
        self, req: _Request, flavor: str, type_name: str, obj_id: str, to_name: str, to_id: str
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        type_id = schema.DEFAULT_TYPE.get((obj_type, to_type))
        if type_id is None:
            raise ApiError(
                400, "VALIDATION_ERROR", f"No default association {obj_type} -> {to_type}"
            )
        rec, target = self._associate_pair(
            obj_type, obj_id, to_type, to_id, [("HUBSPOT_DEFINED", type_id)]
        )
        result = {
            "from": {"id": str(rec.id)},
            "to": {"id": str(target.id)},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": type_id,
            },
        }
        return Response(200, {"status": "COMPLETE", "results": [result]})

    def h_unassociate(
        self,
        req: _Request,
        flavor: str,
        type_name: str,
        obj_id: str,
        to_name: str,
        to_id: str,
        assoc_type: str | None = None,
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        rec, target = self.state.get(obj_type, obj_id), self.state.get(to_type, to_id)
        if rec is not None and target is not None:
            self.state.unassociate(obj_type, rec.id, to_type, target.id)
        return Response(204)

    def h_assoc_batch_read(
        self, req: _Request, flavor: str, from_name: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(from_name), self._type(to_name)
        started = iso_ms(now_ms())
        inputs = self._inputs(req.json(), ASSOC_BATCH_MAX)
        results, errors = [], []
        for item in inputs:
            obj_id = str((item or {}).get("id", ""))
            rec = self.state.get(obj_type, obj_id)
            links = (
                {}
                if rec is None or rec.archived
                else self.state.associations(obj_type, rec.id, to_type)
            )
            if not links:
                errors.append(
                    self._item_error(
                        "OBJECT_NOT_FOUND",
                        f"No {to_type} is associated with {schema.SINGULAR[obj_type]} {obj_id}.",
                        {"fromObjectId": [obj_id]},
                        subCategory="crm.associations.NO_ASSOCIATIONS_FOUND",
                    )
                )
                continue
            after = int(item.get("after") or 0) if str(item.get("after") or "0").isdigit() else 0
            ids = [tid for tid in links if tid >= after]
            page, rest = ids[:ASSOC_LIST_MAX], ids[ASSOC_LIST_MAX:]
            entry: dict[str, Any] = {
                "from": {"id": str(rec.id)},  # type: ignore[union-attr]
                "to": self._assoc_results({tid: links[tid] for tid in page}, flavor),
            }
            if rest:
                entry["paging"] = {"next": {"after": str(rest[0])}}
            results.append(entry)
        return self._batch(results, errors, started)

    def h_assoc_batch_create(
        self, req: _Request, flavor: str, from_name: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(from_name), self._type(to_name)
        started = iso_ms(now_ms())
        results, errors = [], []
        for item in self._inputs(req.json(), 2000):
            try:
                from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
                specs = [
                    (
                        str(t.get("associationCategory", "HUBSPOT_DEFINED")),
                        int(t["associationTypeId"]),
                    )
                    for t in item.get("types", [])
                ]
                rec, target = self._associate_pair(obj_type, from_id, to_type, to_id, specs)
            except (KeyError, TypeError, ValueError):
                errors.append(self._item_error("VALIDATION_ERROR", f"Invalid input {item}", {}))
                continue
            except ApiError as exc:
                errors.append(self._item_error(exc.body["category"], exc.body["message"], {}))
                continue
            results.append(
                {
                    "fromObjectTypeId": schema.OBJECT_TYPE_IDS[obj_type],
                    "fromObjectId": rec.id,
                    "toObjectTypeId": schema.OBJECT_TYPE_IDS[to_type],
                    "toObjectId": target.id,
                    "labels": [],
                }
            )
        response = self._batch(results, errors, started)
        if not errors:
            response.status = 201
        return response

    def h_assoc_batch_default(
        self, req: _Request, flavor: str, from_name: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(from_name), self._type(to_name)
        type_id = schema.DEFAULT_TYPE.get((obj_type, to_type))
        if type_id is None:
            raise ApiError(
                400, "VALIDATION_ERROR", f"No default association {obj_type} -> {to_type}"
            )
        started = iso_ms(now_ms())
        results, errors = [], []
        for item in self._inputs(req.json(), 2000):
            try:
                from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
                rec, target = self._associate_pair(
                    obj_type, from_id, to_type, to_id, [("HUBSPOT_DEFINED", type_id)]
                )
            except (KeyError, TypeError):
                errors.append(self._item_error("VALIDATION_ERROR", f"Invalid input {item}", {}))
                continue
            except ApiError as exc:
                errors.append(self._item_error(exc.body["category"], exc.body["message"], {}))
                continue
            results.append(
                {
                    "from": {"id": str(rec.id)},
                    "to": {"id": str(target.id)},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": type_id,
                    },
                }
            )
        return self._batch(results, errors, started)

    # ------------------------------------------------------------------ properties
    _TYPES_FIELDS: ClassVar[dict[str, set[str]]] = {
        "bool": {"booleancheckbox", "calculation_equation"},
        "enumeration": {"booleancheckbox", "checkbox", "radio", "select", "calculation_equation"},
        "date": {"date"},
        "datetime": {"date"},
        "string": {"text", "textarea", "html", "phonenumber", "file", "calculation_equation"},
        "number": {"number", "calculation_equation"},
        "phone_number": {"phonenumber"},
    }

    def h_properties_list(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        archived = _bool_param(req.query, "archived")
        results = [
            d
            for d in self.state.properties[obj_type].values()
            if bool(d.get("archived")) == archived
        ]
        return Response(200, {"results": results})

    def h_property_get(self, req: _Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        definition = self.state.properties[obj_type].get(name)
        if definition is None or (
            definition.get("archived") and not _bool_param(req.query, "archived")
        ):
            raise ApiError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for {obj_type}."
            )
        return Response(200, definition)

    def _check_definition(self, obj_type: str, d: dict[str, Any]) -> None:
        type_, field_type = d.get("type"), d.get("fieldType")
        if type_ not in self._TYPES_FIELDS:
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid property type {type_!r}.")
        if field_type not in self._TYPES_FIELDS[type_]:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"fieldType {field_type!r} is not valid for type {type_!r}.",
            )
        if d.get("groupName") not in self.state.groups[obj_type]:
            raise ApiError(
                400, "VALIDATION_ERROR", f"Property group {d.get('groupName')!r} does not exist."
            )
        options = d.get("options") or []
        if type_ == "enumeration" and field_type != "booleancheckbox" and not options:
            raise ApiError(400, "VALIDATION_ERROR", "Enumeration properties need options.")
        for opt in options:
            if not isinstance(opt, dict) or "value" not in opt or "label" not in opt:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"Invalid option {opt!r}: label and value required."
                )

    def h_property_create(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json() or {}
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise ApiError(
                400, "VALIDATION_ERROR", f"Missing required fields: {', '.join(missing)}"
            )
        name = str(body["name"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid property name {name!r}.")
        existing = self.state.properties[obj_type].get(name)
        if existing is not None and not existing.get("archived"):
            raise ApiError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        self._check_definition(obj_type, body)
        stamp = iso_ms(now_ms())
        definition = schema.property_definition(
            name,
            str(body["label"]),
            str(body["type"]),
            str(body["fieldType"]),
            str(body["groupName"]),
            [
                {
                    "label": o["label"],
                    "value": o["value"],
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                    **({"description": o["description"]} if o.get("description") else {}),
                }
                for i, o in enumerate(body.get("options") or [])
            ],
            hubspot_defined=False,
            stamp=stamp,
            description=str(body.get("description") or ""),
        )
        definition["hubspotDefined"] = False
        definition["displayOrder"] = body.get("displayOrder", -1)
        definition["hidden"] = bool(body.get("hidden", False))
        definition["formField"] = bool(body.get("formField", False))
        definition["hasUniqueValue"] = bool(body.get("hasUniqueValue", False))
        self.state.properties[obj_type][name] = definition
        self.state.version += 1
        return Response(201, definition)

    def h_property_update(self, req: _Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        definition = self.state.properties[obj_type].get(name)
        if definition is None or definition.get("archived"):
            raise ApiError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for {obj_type}."
            )
        if definition["modificationMetadata"]["readOnlyDefinition"]:
            raise ApiError(400, "VALIDATION_ERROR", f"{name} is a read-only HubSpot property.")
        body = req.json() or {}
        allowed = {
            "label",
            "description",
            "groupName",
            "options",
            "displayOrder",
            "hidden",
            "formField",
            "type",
            "fieldType",
        }
        unknown = set(body) - allowed
        if unknown:
            raise ApiError(400, "VALIDATION_ERROR", f"Unknown fields: {sorted(unknown)}")
        updated = {**definition, **body}
        if "options" in body:
            updated["options"] = [
                {
                    "label": o.get("label"),
                    "value": o.get("value"),
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                    **({"description": o["description"]} if o.get("description") else {}),
                }
                for i, o in enumerate(body["options"] or [])
            ]
        self._check_definition(obj_type, updated)
        updated["updatedAt"] = iso_ms(now_ms())
        self.state.properties[obj_type][name] = updated
        self.state.version += 1
        return Response(200, updated)

    def h_property_archive(self, req: _Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        definition = self.state.properties[obj_type].get(name)
        if definition is None:
            raise ApiError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for {obj_type}."
            )
        if definition["modificationMetadata"]["readOnlyDefinition"]:
            raise ApiError(
                400, "VALIDATION_ERROR", f"{name} is a HubSpot property and cannot be archived."
            )
        definition["archived"] = True
        self.state.version += 1
        return Response(204)

    def h_groups_list(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        return Response(200, {"results": list(self.state.groups[obj_type].values())})

    def h_group_get(self, req: _Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        group = self.state.groups[obj_type].get(name)
        if group is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}.")
        return Response(200, group)

    def h_group_create(self, req: _Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json() or {}
        name, label = body.get("name"), body.get("label")
        if not name or not label or not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            raise ApiError(
                400, "VALIDATION_ERROR", "A group needs a valid lower-case name and a label."
            )
        if name in self.state.groups[obj_type]:
            raise ApiError(
                409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists."
            )
        group = {
            "name": name,
            "label": label,
            "displayOrder": body.get("displayOrder", -1),
            "archived": False,
        }
        self.state.groups[obj_type][name] = group
        self.state.version += 1
        return Response(201, group)

    def h_group_update(self, req: _Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        group = self.state.groups[obj_type].get(name)
        if group is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}.")
        body = req.json() or {}
        for key in ("label", "displayOrder"):
            if key in body:
                group[key] = body[key]
        self.state.version += 1
        return Response(200, group)

    # ------------------------------------------------------------------ owners, pipelines, account
    def h_owners_list(self, req: _Request, flavor: str) -> Response:
        limit = _int_param(req.query, "limit", 100)
        if limit < 1 or limit > OWNERS_LIMIT_MAX:
            raise ApiError(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {OWNERS_LIMIT_MAX}"
            )
        after = _int_param(req.query, "after", 0)
        email_values = req.query.get("email")
        email = email_values[-1] if email_values else None
        archived = _bool_param(req.query, "archived")
        owners = [
            o
            for o in self.state.owners
            if o.get("archived", False) == archived and (email is None or o["email"] == email)
        ]
        page = owners[after : after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(owners):
            body["paging"] = self._link(req.path, str(after + limit))
        return Response(200, body)

    def h_owner_get(self, req: _Request, flavor: str, owner_id: str) -> Response:
        for owner in self.state.owners:
            if owner["id"] == owner_id:
                return Response(200, owner)
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found.")

    def _pipelines(self, type_name: str) -> list[dict[str, Any]]:
        obj_type = self._type(type_name)
        return self.state.pipelines.get(obj_type, [])

    def h_pipelines_list(self, req: _Request, flavor: str, type_name: str) -> Response:
        return Response(200, {"results": self._pipelines(type_name)})

    def h_pipeline_get(self, req: _Request, flavor: str, type_name: str, pid: str) -> Response:
        for pipeline in self._pipelines(type_name):
            if pipeline["id"] == pid:
                return Response(200, pipeline)
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Pipeline {pid} not found.")

    def h_pipeline_stages(self, req: _Request, flavor: str, type_name: str, pid: str) -> Response:
        pipeline = self.h_pipeline_get(req, flavor, type_name, pid).body
        return Response(200, {"results": pipeline["stages"]})

    def h_account(self, req: _Request, flavor: str) -> Response:
        body = dict(self.state.account)
        offset = datetime.now(ZoneInfo(body["timeZone"])).utcoffset()
        seconds = int(offset.total_seconds()) if offset else 0
        sign = "+" if seconds >= 0 else "-"
        body["utcOffset"] = f"{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"
        body["utcOffsetMilliseconds"] = seconds * 1000
        return Response(200, body)

    # ------------------------------------------------------------------ OAuth
    def oauth_token(self, req: _Request, *args: str) -> Response:
        form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        opts = self.options

        def fail(status: str, message: str) -> Response:
            return Response(
                400,
                {"status": status, "message": message, "correlationId": str(uuid.uuid4())},
            )

        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return fail("BAD_GRANT_TYPE", "grant_type must be refresh_token or authorization_code")
        if form.get("client_id") != opts.client_id:
            return fail("BAD_CLIENT_ID", "missing or unknown client id")
        if not secrets.compare_digest(form.get("client_secret", ""), opts.client_secret):
            return fail("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if grant == "refresh_token":
            if not secrets.compare_digest(form.get("refresh_token", ""), opts.refresh_token):
                return fail("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        elif not secrets.compare_digest(form.get("code", ""), opts.oauth_code):
            return fail("BAD_AUTH_CODE", "missing or unknown auth code")
        token = "sbx-oauth-" + secrets.token_urlsafe(24)
        ttl = opts.oauth_token_ttl_s
        with self._meta:
            self._oauth[token] = time.time() + ttl
        return Response(
            200,
            {
                "token_type": "bearer",
                "refresh_token": opts.refresh_token,
                "access_token": token,
                "expires_in": max(1, int(ttl)),
            },
        )

    # ------------------------------------------------------------------ token introspection
    def _granted(self) -> list[str]:
        scopes = self.options.scopes
        return list(ALL_SCOPES if scopes is None else scopes)

    def _user_id(self) -> int:
        for owner in self.state.owners:
            if owner.get("userId") is not None and not owner.get("archived"):
                return int(owner["userId"])
        return 1_000_001

    def private_app_token_info(self, req: _Request) -> Response:
        """`POST /oauth/v2/private-apps/get/access-token-info` with `{"tokenKey": token}`.

        Answers for the private-app token (SandboxOptions.token) with the hub, user and app it
        belongs to and its granted scopes (the `scopes` fault); any other key is refused.
        """
        body = req.json()
        key = body.get("tokenKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise ApiError(400, "VALIDATION_ERROR", "tokenKey is required.")
        if not secrets.compare_digest(key.encode(), self.options.token.encode()):
            raise ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "The access token is not a valid private app access token.",
            )
        return Response(
            200,
            {
                "userId": self._user_id(),
                "hubId": int(self.state.account["portalId"]),
                "appId": PRIVATE_APP_ID,
                "scopes": self._granted(),
            },
        )

    def access_token_info(self, req: _Request, token: str) -> Response:
        """`GET /oauth/v1/access-tokens/{token}`: metadata of a live OAuth access token."""
        with self._meta:
            expiry = self._oauth.get(token)
        now = time.time()
        if expiry is None or now >= expiry:
            raise ApiError(404, "OBJECT_NOT_FOUND", "The access token was not found or expired.")
        owner = next((o for o in self.state.owners if not o.get("archived")), None)
        portal = int(self.state.account["portalId"])
        return Response(
            200,
            {
                "token": token,
                "user": owner["email"] if owner else "sandbox@example.com",
                "hub_domain": f"sandbox-{portal}.example.com",
                "scopes": self._granted(),
                "hub_id": portal,
                "app_id": PRIVATE_APP_ID,
                "expires_in": max(0, int(expiry - now)),
                "user_id": self._user_id(),
                "token_type": "access",
            },
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "heatsync-sandbox/1"
    sys_version = ""

    def _dispatch(self) -> None:
        sandbox: SandboxServer = self.server.sandbox  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = _Request(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            self.headers,
            body,
        )
        try:
            response = sandbox.handle(req)
        except _Drop:
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
        if payload or response.status != 204:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (response.headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        sandbox: SandboxServer = self.server.sandbox  # type: ignore[attr-defined]
        if sandbox.options.log_requests:
            # tokens travel in headers and bodies, except the OAuth token metadata path: mask it
            shown = tuple(
                re.sub(r"(/access-tokens/)[^/\s?\"']+", r"\1***", a) if isinstance(a, str) else a
                for a in args
            )
            super().log_message(format, *shown)
