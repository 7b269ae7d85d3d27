"""Shared pieces of the amoCRM emulator: options, requests, answers, errors, query parsing, HAL."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlencode

from sandbox.amocrm.state import AmoState
from sandbox.http import Response as BaseResponse

HAL = "application/hal+json"
PROBLEM = "application/problem+json"
HTML = "text/html"


@dataclass
class AmoOptions:
    """Behaviour of an amoCRM sandbox; limits and faults can change at runtime (`set_faults`)."""

    client_id: str = "sandbox-amocrm-client-id"
    client_secret: str = "sandbox-amocrm-client-secret"
    redirect_uri: str = "https://heatsync.example/amocrm/callback"
    # accepted once (registered at start unless already known); `issue_code()` mints more
    auth_code: str | None = "sandbox-amocrm-auth-code"
    auth_code_ttl_s: float = 1200.0  # 20 minutes
    # the start of the rotating chain (registered at start unless already known, then single-use)
    refresh_token: str | None = "sandbox-amocrm-refresh-token"
    refresh_token_ttl_s: float = 90 * 86_400.0  # 3 months
    access_token_ttl_s: float = 86_400.0  # 1 day
    long_lived_token: str | None = "sandbox-amocrm-long-lived-token"
    # requests per second per account on /api/v4 (a sliding one-second window)
    rate_per_second: int = 7
    # this many 429 answers within block_window_s block the account (403) for block_s
    block_after_429: int = 10
    block_window_s: float = 60.0
    block_s: float = 600.0
    batch_max: int = 50  # PATCH /contacts, POST|PATCH /tasks, POST custom_fields
    fail_rate_5xx: float = 0.0
    latency_ms: int = 0
    # each request's latency is latency_ms plus a uniform draw in [0, latency_jitter_ms)
    latency_jitter_ms: int = 0
    # a faster clock: the rate and 429 windows and the latency divided by it
    time_scale: float = 1.0
    drop_rate: float = 0.0
    # a state-changing request is applied, then the connection closes without an answer
    drop_after_apply_rate: float = 0.0
    seed: int = 1
    log_requests: bool = False

    def __repr__(self) -> str:  # secrets stay out of reprs
        hidden = {"client_secret", "auth_code", "refresh_token", "long_lived_token"}
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
        return f"AmoOptions({shown})"


class ApiError(Exception):
    """An error answer in amoCRM's problem+json shape."""

    def __init__(self, status: int, detail: str, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {
            "title": title or _TITLES.get(status, "Error"),
            "type": f"https://httpstatus.es/{status}",
            "status": status,
            "detail": detail,
            **extra,
        }


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
}


def validation_error(errors: list[tuple[str, str, str, str]]) -> ApiError:
    """400 rejecting a whole batch: errors as (request_id, code, path, detail)."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for request_id, code, path, detail in errors:
        grouped.setdefault(request_id, []).append({"code": code, "path": path, "detail": detail})
    extra: dict[str, Any] = {
        "validation-errors": [{"request_id": rid, "errors": errs} for rid, errs in grouped.items()]
    }
    return ApiError(400, "Request validation failed", **extra)


def encode_json(value: Any, depth: int = 3) -> str:
    """`json.dumps(value, ensure_ascii=False)`, its outer levels joined here: one call on a page
    of 250 records holds the interpreter lock throughout, delaying every request that wakes
    from its latency meanwhile (and so its count)."""
    if depth > 0 and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = (
            f"{json.dumps(k, ensure_ascii=False)}: {encode_json(v, depth - 1)}"
            for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    if depth > 0 and isinstance(value, list):
        return "[" + ", ".join(encode_json(v, depth - 1) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Response(BaseResponse):
    content_type: str = HAL


def error_response(exc: ApiError) -> Response:
    return Response(exc.status, exc.body, content_type=PROBLEM)


class Request:
    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Any,
        body: bytes,
        base_url: str,
    ) -> None:
        self.method = method
        self.path = path
        self.pairs = query
        self.headers = headers
        self.body = body
        self.base_url = base_url

    def json(self) -> Any:
        if not self.body:
            raise ApiError(400, "Request body is empty")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, f"Invalid JSON: {exc}") from exc

    # ------------------------------------------------------------------ query helpers
    def values(self, name: str) -> list[str]:
        """Values of `name`, `name[]` and `name[N]`, comma-separated lists split."""
        out: list[str] = []
        for key, value in self.pairs:
            if (
                key == name
                or key == name + "[]"
                or (key.startswith(name + "[") and key[len(name) + 1 : -1].isdigit())
            ):
                out.extend(v.strip() for v in value.split(",") if v.strip())
        return out

    def one(self, name: str) -> str | None:
        found = [v for k, v in self.pairs if k == name]
        return found[-1] if found else None

    def ints(self, name: str) -> list[int]:
        out = []
        for value in self.values(name):
            try:
                out.append(int(value))
            except ValueError as exc:
                raise ApiError(400, f"{name} must hold integers") from exc
        return out

    def int_param(self, name: str, default: int) -> int:
        value = self.one(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise ApiError(400, f"{name} must be an integer") from exc

    def range(self, name: str, *, scalar: str = "from") -> tuple[int | None, int | None] | None:
        """`name[from]`/`name[to]` (unix seconds), or a scalar taken as `scalar` ("from" or
        "none": matches nothing). None when absent."""
        low, high = self.one(name + "[from]"), self.one(name + "[to]")
        plain = self.one(name)
        if low is None and high is None and plain is None:
            return None
        try:
            if low is not None or high is not None:
                return (int(low) if low else None, int(high) if high else None)
            assert plain is not None
            if scalar == "none":
                return (1, 0)  # an empty range
            return (int(plain), None)
        except ValueError as exc:
            raise ApiError(400, f"{name} must be a unix timestamp") from exc

    def with_(self) -> set[str]:
        return {w.strip() for v in self.values("with") for w in v.split(",") if w.strip()}

    def order(self, allowed: tuple[str, ...]) -> tuple[str, bool] | None:
        """(field, descending) from `order[field]=asc|desc`; None when not given."""
        for key, value in self.pairs:
            if key.startswith("order[") and key.endswith("]"):
                name = key[6:-1]
                if name not in allowed or value.lower() not in ("asc", "desc"):
                    raise ApiError(400, f"Unsupported order {key}={value}")
                return name, value.lower() == "desc"
        return None


def in_range(value: int | None, bounds: tuple[int | None, int | None] | None) -> bool:
    if bounds is None:
        return True
    if value is None:
        return False
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)


def link(req: Request, path: str, page: int | None = None) -> dict[str, str]:
    pairs = [(k, v) for k, v in req.pairs if k != "page"]
    if page is not None:
        pairs.append(("page", str(page)))
    query = urlencode(pairs)
    return {"href": f"{req.base_url}{path}" + (f"?{query}" if query else "")}


def self_link(req: Request, path: str) -> dict[str, Any]:
    return {"self": {"href": f"{req.base_url}{path}"}}


def paginate(
    req: Request,
    items: list[dict[str, Any]],
    key: str,
    *,
    limit_max: int,
    limit_default: int = 50,
    totals: bool = False,
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """One HAL page of `items` (already filtered and ordered), or 204 with no body when empty.

    `_links.next` is present whenever the page is full, so a client paging a list whose length is
    a multiple of `limit` ends on a 204 (emulator choice, see README)."""
    limit = req.int_param("limit", limit_default)
    page = req.int_param("page", 1)
    if limit < 1 or limit > limit_max:
        raise ApiError(400, f"limit must be between 1 and {limit_max}")
    if page < 1:
        raise ApiError(400, "page must be 1 or more")
    chunk = items[(page - 1) * limit : page * limit]
    if not chunk:
        return Response(204)
    if render is not None:
        chunk = [render(item) for item in chunk]
    links: dict[str, Any] = {"self": link(req, req.path, page)}
    if len(chunk) == limit:
        links["next"] = link(req, req.path, page + 1)
    if page > 1:
        links["first"] = link(req, req.path, 1)
        links["prev"] = link(req, req.path, page - 1)
    body: dict[str, Any] = {"_page": page, "_links": links, "_embedded": {key: chunk}}
    if totals:
        pages = (len(items) + limit - 1) // limit
        body = {"_total_items": len(items), "_page": page, "_page_count": pages, **body}
        links["last"] = link(req, req.path, pages)
    return Response(200, body)


class ListCache:
    """Filtered, ordered lists of one state, reused while the state is unchanged.

    A full read asks for page after page of one query: filtering and sorting a 100k-note list
    for each page made the sandbox, not the rate limit, the bound of a large extract. The first
    page of a query always builds its list afresh; a later page reuses it while `state.version`
    and the sizes of the collections are what they were when it was built (the sandbox bumps
    `version` on every change; a record edited by hand between two pages of one read, without
    a bump, is the one change a later page would not see).
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def stamp(state: AmoState) -> Hashable:
        notes = tuple(len(n) for n in state.notes.values())
        sizes = (len(state.contacts), len(state.leads), len(state.tasks), len(state.events))
        return (id(state), state.version, notes, sizes)

    def get(
        self, state: AmoState, key: Hashable, build: Callable[[], Any], *, fresh: bool = False
    ) -> Any:
        stamp = self.stamp(state)
        with self._lock:
            found = None if fresh else self._entries.get(key)
            if found is not None and found[0] == stamp:
                self._entries.move_to_end(key)
                return found[1]
        value = build()
        with self._lock:
            self._entries[key] = (stamp, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


def first_page(req: Request) -> bool:
    return req.one("page") in (None, "", "1")


def query_key(req: Request, *parts: Hashable) -> Hashable:
    """A request's filters and order (its query without page and limit), plus `parts`."""
    return (*parts, tuple(p for p in req.pairs if p[0] not in ("page", "limit")))


@dataclass
class Context:
    """What a handler works on: the account state, the options and the list cache."""

    state: AmoState
    options: AmoOptions
    lists: ListCache = field(default_factory=ListCache)
