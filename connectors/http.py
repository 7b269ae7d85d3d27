"""Shared HTTP plumbing for CRM connectors: sessions, rate limiting, retries, errors, redaction.

Only what every CRM needs lives here; a CRM's own vocabulary (how its error answers read, what its
rate-limit policies mean, which URL shapes carry secrets) is its connector's `ServerRules`
subclass, passed to `JsonHttp`, plus the patterns it gives `register_redaction`.

- `RateLimiter`: client-side sliding-window budgets (a burst budget per rolling window and a
  separate per-second search budget), shared by the clients of one account (`shared_limiter`).
  It sleeps before a request instead of letting the server answer 429.
- `JsonHttp`: one `requests.Session` plus the limiter, a tenacity retry policy (429, 423, 5xx,
  dropped connections and timeouts; honours `Retry-After` and the CRM's rate-limit rules;
  exponential backoff with jitter; bounded attempts and total wait) and `RequestStats` counters.
- `ConnectorError` and subclasses carry status, category, message and the server's request id,
  never a secret. `redact()` scrubs every log line and exception text. Errors a person must act on
  (`AuthError`, `PermissionDeniedError`, `UnreachableError`) read as one line saying what failed
  and what to check (`hint`), and are never retried (an unreachable host only briefly).

Non-idempotent requests (creates) are sent with `idempotent=False`: they are retried only when the
server provably rejected them unprocessed (429), never after an ambiguous failure; the caller
reconciles instead.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, stop_after_attempt, stop_after_delay
from urllib3.exceptions import NameResolutionError, NewConnectionError

from connectors.base import RequestStats

log = logging.getLogger("heatsync.connectors.http")

# --------------------------------------------------------------------------------------------
# Redaction

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def secret_field_pattern(*names: str) -> re.Pattern[str]:
    """A redaction pattern for `name=value` / `"name": "value"` forms of the given field names."""
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"(?i)((?:{alternatives})[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}}]+")


_PATTERNS: list[re.Pattern[str]] = [
    # Authorization: Bearer xxx / "Authorization": "Bearer xxx"
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=:]+"),
    # key=value forms in URLs, form bodies and reprs (OAuth 2 and the usual API key names)
    secret_field_pattern(
        "access_token", "refresh_token", "client_secret", "token", "api_key", "apikey"
    ),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def register_redaction(pattern: re.Pattern[str]) -> None:
    """Mask what `pattern` matches, keeping its group 1 (e.g. a CRM's URL that holds a token).

    Connectors register their CRM's secret-bearing shapes when they are imported.
    """
    with _SECRETS_LOCK:
        if pattern not in _PATTERNS:
            _PATTERNS.append(pattern)


def redact(text: object) -> str:
    """Return `text` as a string with registered secrets and token-like fields masked."""
    out = str(text)
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
        patterns = list(_PATTERNS)
    for secret in secrets:
        if secret in out:
            out = out.replace(secret, "***")
    for pattern in patterns:
        out = pattern.sub(lambda m: m.group(1) + "***", out)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message of every record passing through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not our concern here
            return True
        record.msg = redact(message)
        record.args = None
        return True


log.addFilter(RedactingFilter())

# --------------------------------------------------------------------------------------------
# Errors

TRANSIENT_STATUSES = frozenset({423, 429, 500, 502, 503, 504, 521, 522, 523, 524})


class ConnectorError(Exception):
    """A CRM request failed. The message names status, category, message and request id.

    `summary`, when given, replaces that technical line with a sentence for people; `hint` (what
    to check or do) is appended after " — ". `technical` always keeps the technical line.
    `correlation_label` is what the CRM calls its request id in that line; `missing_scopes` lists
    the permissions a refusal named (any one of them would do), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
        correlation_label: str = "request id",
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
        policy: str | None = None,
        body: Any = None,
        missing_scopes: Sequence[str] = (),
        summary: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.category = category
        self.correlation_id = correlation_id
        self.correlation_label = correlation_label
        self.missing_scopes = list(missing_scopes)
        self.method = method
        self.path = redact(path) if path else path
        self.retry_after = retry_after
        self.policy = policy
        self.body = body
        self.detail = redact(message)
        self.hint = redact(hint) if hint else None
        parts = []
        if method and path:
            parts.append(f"{method} {self.path}")
        if status is not None:
            parts.append(f"HTTP {status}")
        if category:
            parts.append(category)
        text = " ".join(parts)
        text = f"{text}: {self.detail}" if text else self.detail
        if correlation_id:
            text += f" ({correlation_label} {correlation_id})"
        self.technical = redact(text)
        self.summary = redact(summary) if summary else None
        shown = self.summary or self.technical
        super().__init__(f"{shown} — {self.hint}" if self.hint else shown)


class AuthError(ConnectorError):
    """401 (or a refused OAuth refresh): the credentials are wrong, expired or revoked."""


class PermissionDeniedError(AuthError):
    """403: the credentials were accepted but may not do this (e.g. a missing scope).

    `missing_scopes` lists the scopes the server named (any one of them would do), if any.
    """


class UnreachableError(ConnectorError):
    """No connection could be made (refused, unknown host, connect timeout, TLS, bad URL).

    Nothing reached the server, so retrying cannot duplicate anything; it is retried only briefly.
    """


class NotFoundError(ConnectorError):
    """404."""


class ConflictError(ConnectorError):
    """409: the object already exists."""


class RequestError(ConnectorError):
    """Another 4xx: the request itself is wrong (validation, bad filter...)."""


class TransientError(ConnectorError):
    """A failure worth retrying for idempotent requests."""


class RateLimitedError(TransientError):
    """429: the server refused the request unprocessed."""


class LockedError(TransientError):
    """423: the object is locked for ~2 s."""


class ServerError(TransientError):
    """5xx: the request may or may not have been applied."""


class TransportError(TransientError):
    """Dropped connection or timeout: the request may or may not have been applied."""


@dataclass(frozen=True)
class ErrorBody:
    """What a CRM's error answer says, read by its `ServerRules`."""

    category: Any = None  # the CRM's error code or category
    message: Any = None
    correlation_id: Any = None  # the server's id of the request, for its support
    policy: Any = None  # the rate-limit policy the server says was exceeded
    missing_scopes: tuple[str, ...] = ()  # permissions a refusal names


class ServerRules:
    """A CRM's dialect as the shared layer needs it: error answers and rate-limit policies.

    The base class knows only HTTP (a 429 is a rate limit, the message is the answer's text); a
    connector subclasses it and passes an instance to `JsonHttp`.
    """

    correlation_label = "request id"  # what the CRM calls the request id in error messages

    def read_error(self, body: Any) -> ErrorBody:
        """The fields of a parsed error answer (`body` is None when it was not JSON)."""
        return ErrorBody()

    def is_rate_limited(self, status: int, error: ErrorBody) -> bool:
        """Whether an error answer means the request was refused unprocessed for a rate limit."""
        return status == 429

    def exhausts_window(self, error: ConnectorError) -> bool:
        """Whether a 429 says the rolling burst window is spent (the limiter then blocks it)."""
        return False

    def rate_limit_wait(self, error: ConnectorError) -> float | None:
        """Seconds before retrying a 429 that has no Retry-After; None = exponential backoff."""
        return None


def error_from_response(
    resp: requests.Response, method: str, path: str, rules: ServerRules | None = None
) -> ConnectorError:
    """Build the right ConnectorError for a non-2xx response, read by the CRM's `rules`."""
    rules = rules or ServerRules()
    body: Any
    try:
        body = resp.json()
    except ValueError:
        body = None
    fields = rules.read_error(body)
    category, message = fields.category, fields.message
    correlation, policy = fields.correlation_id, fields.policy
    if not message:
        text = (resp.text or "").strip()
        if "html" in resp.headers.get("Content-Type", "").lower() or text.startswith("<"):
            text = ""  # an edge proxy's error page says no more than the status line
        message = (text or resp.reason or "").strip()[:300] or "no message"
    retry_after = _retry_after(resp.headers.get("Retry-After"))
    status = resp.status_code
    cls: type[ConnectorError]
    if rules.is_rate_limited(status, fields):
        cls = RateLimitedError
    elif status == 423:
        cls = LockedError
    elif status >= 500:
        cls = ServerError
    elif status == 401:
        cls = AuthError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    else:
        cls = RequestError
    return cls(
        str(message),
        status=status,
        category=str(category) if category else None,
        correlation_id=str(correlation) if correlation else None,
        correlation_label=rules.correlation_label,
        method=method,
        path=path,
        retry_after=retry_after,
        policy=str(policy) if policy else None,
        body=body,
        missing_scopes=fields.missing_scopes,
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


# --------------------------------------------------------------------------------------------
# Rate limiting


class SlidingWindow:
    """At most `limit` requests in any rolling `window_s` seconds (thread-safe, sleeps).

    A request taken with `hold()` occupies its slot until it completes, and its slot expires
    `window_s` after completion, not after sending: the server counts the request when it
    arrives, which is somewhere in between, so a window measured from the send time lets a
    request that was slow to arrive overlap the next window (one 429 per burst). `acquire()`
    takes a slot stamped at once, for callers that do not report completion.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._stamps: deque[float] = deque()  # completion (or acquisition) times, ascending
        self._held = 0  # slots taken by requests still in flight
        self._cond = threading.Condition()

    def _take(self, held: bool) -> float:
        slept = 0.0
        with self._cond:
            while True:
                now = time.monotonic()
                while self._stamps and now - self._stamps[0] >= self.window_s:
                    self._stamps.popleft()
                if len(self._stamps) + self._held < self.limit:
                    if held:
                        self._held += 1
                    else:
                        self._stamps.append(now)
                    return slept
                wait = self.window_s - (now - self._stamps[0]) + 0.001 if self._stamps else None
                self._cond.wait(wait)
                slept += time.monotonic() - now

    def acquire(self) -> float:
        """Take one slot stamped now, sleeping until one is free. Returns the seconds slept."""
        return self._take(held=False)

    def release(self) -> None:
        """End a request taken with `hold()`: its slot expires `window_s` from now."""
        with self._cond:
            self._held = max(0, self._held - 1)
            self._stamps.append(time.monotonic())
            self._cond.notify_all()

    @contextmanager
    def hold(self) -> Iterator[float]:
        """Hold a slot for the duration of a request; yields the seconds slept."""
        slept = self._take(held=True)
        try:
            yield slept
        finally:
            self.release()

    def penalize(self, seconds: float) -> None:
        """Block the whole window for `seconds` (after the server said we exceeded it)."""
        with self._cond:
            until = time.monotonic() + seconds - self.window_s
            self._stamps.clear()
            self._stamps.extend([until] * self.limit)


class RateLimiter:
    """Burst budget per rolling window plus a separate search budget per second.

    Clients of one account should share one limiter (`shared_limiter`): the server counts the
    account's requests, not a client's.
    """

    def __init__(
        self, burst_limit: int, burst_window_s: float, search_per_second: int, margin: int = 0
    ) -> None:
        self.burst = SlidingWindow(max(1, burst_limit - margin), burst_window_s)
        self.search = SlidingWindow(max(1, search_per_second), 1.0)

    def acquire(self, *, search: bool = False) -> float:
        slept = self.search.acquire() if search else 0.0
        return slept + self.burst.acquire()

    @contextmanager
    def slot(self, *, search: bool = False) -> Iterator[float]:
        """Hold a search slot (for searches) and a burst slot while a request is in flight."""
        with ExitStack() as stack:
            slept = stack.enter_context(self.search.hold()) if search else 0.0
            yield slept + stack.enter_context(self.burst.hold())


_SHARED: dict[tuple[Any, ...], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(
    account: str, burst_limit: int, burst_window_s: float, search_per_second: int, margin: int = 0
) -> RateLimiter:
    """The process-wide limiter for `account` (an opaque key naming the server and credential)."""
    key = (account, burst_limit, burst_window_s, search_per_second, margin)
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = RateLimiter(
                burst_limit, burst_window_s, search_per_second, margin
            )
        return limiter


# --------------------------------------------------------------------------------------------
# Session and requests


def make_session(user_agent: str = "heatsync-connector/0.1", pool: int = 8) -> requests.Session:
    """A requests.Session with a connection pool and no automatic retries (we retry ourselves)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
    return session


@dataclass
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter."""

    attempts: int = 6
    max_total_wait_s: float = 120.0
    base_s: float = 0.5
    cap_s: float = 30.0
    window_s: float = 10.0  # limiter blocked this long after a window-spending 429, no Retry-After
    connect_attempts: int = 3  # attempts when no connection can be made at all (a blip)
    connect_wait_s: float = 0.5  # first pause before such a retry (doubles)


@dataclass(frozen=True)
class Hints:
    """What to tell a person when the server cannot be reached or refuses the credentials."""

    unauthorized: str = "check the credentials"
    forbidden: str = "check the credentials' permissions"
    unreachable: str = "check the base URL"


def _connect_failure(exc: requests.RequestException) -> str | None:
    """Why no connection was made, or None when one was (the request may have been sent)."""
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return "not a valid URL"
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return "not an http(s) URL"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if not isinstance(exc, requests.ConnectionError):
        return None
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NameResolutionError):
        return "host name not found"
    if isinstance(reason, NewConnectionError):
        text = str(reason).lower()
        if "refused" in text:
            return "connection refused"
        if "unreachable" in text:
            return "network unreachable"
        return "could not connect"
    return None


class JsonHttp:
    """JSON over HTTP with auth headers, rate limiting, retries and counters.

    `auth` returns the headers to send (called before every attempt, so a refreshed token is
    picked up); `on_unauthorized` is called once on a 401 and returns True if retrying makes sense
    (e.g. after refreshing an expired OAuth token). `service` names the server in messages,
    `hints` say what to check when it is unreachable or refuses the credentials, and `rules` read
    its error answers and rate-limit policies.
    """

    def __init__(
        self,
        base_url: str,
        *,
        limiter: RateLimiter,
        policy: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        auth: Callable[[], Mapping[str, str]] | None = None,
        on_unauthorized: Callable[[ConnectorError], bool] | None = None,
        session: requests.Session | None = None,
        stats: RequestStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        service: str = "the server",
        hints: Hints | None = None,
        rules: ServerRules | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.auth = auth
        self.on_unauthorized = on_unauthorized
        self.session = session or make_session()
        self.stats = stats or RequestStats()
        self.service = service
        self.hints = hints or Hints()
        self.rules = rules or ServerRules()
        self._stats_lock = threading.Lock()
        self._sleep = sleep

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        search: bool = False,
        write: bool = False,
        idempotent: bool = True,
        authenticated: bool = True,
    ) -> Any:
        """Send one logical request (retrying transient failures); return the parsed JSON or None.

        Raises ConnectorError subclasses. With `idempotent=False`, only 429/423 (rejected before
        processing) and failed connects (nothing sent) are retried; a 5xx or dropped connection is
        raised at once for the caller to reconcile. AuthError (401, after at most one refresh via
        `on_unauthorized`) and PermissionDeniedError (403) are raised at once, never retried;
        UnreachableError after `policy.connect_attempts`.
        """

        def retryable(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, UnreachableError):
                return state.attempt_number < self.policy.connect_attempts
            if isinstance(exc, (RateLimitedError, LockedError)):
                return True
            return idempotent and isinstance(exc, TransientError)

        retrier = Retrying(
            stop=stop_after_attempt(self.policy.attempts)
            | stop_after_delay(self.policy.max_total_wait_s),
            wait=self._wait,
            retry=retryable,
            before_sleep=self._before_sleep,
            reraise=True,
            sleep=self._sleep,
        )
        refreshed = False
        while True:
            try:
                return retrier(
                    self._send, method, path, params, json_body, form, search, write, authenticated
                )
            except AuthError as exc:
                if (
                    exc.status == 401
                    and not refreshed
                    and authenticated
                    and self.on_unauthorized is not None
                    and self.on_unauthorized(exc)
                ):
                    refreshed = True
                    continue
                raise

    def _send(
        self,
        method: str,
        path: str,
        params: Any,
        json_body: Any,
        form: Mapping[str, str] | None,
        search: bool,
        write: bool,
        authenticated: bool,
    ) -> Any:
        with self.limiter.slot(search=search):
            headers: dict[str, str] = {}
            if authenticated and self.auth is not None:
                headers.update(self.auth())
            if json_body is not None:
                headers["Content-Type"] = "application/json"
            url = path if path.startswith("http") else f"{self.base_url}{path}"
            self._count(requests=1, write_requests=1 if write else 0)
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    data=json.dumps(json_body) if json_body is not None else form,
                    headers=headers,
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                self._count(server_errors=1)
                # The exception text may contain the URL; redact it and drop the chained original.
                reason = _connect_failure(exc)
                if reason is not None:
                    raise UnreachableError(
                        f"{type(exc).__name__}: {exc}",
                        method=method,
                        path=path,
                        summary=f"cannot reach {self.base_url}: {reason}",
                        hint=self.hints.unreachable,
                    ) from None
                raise TransportError(
                    f"{type(exc).__name__}: {exc}", method=method, path=path
                ) from None
        if resp.status_code >= 400:
            err = error_from_response(resp, method, path, self.rules)
            if resp.status_code == 429:
                self._count(rate_limited=1)
                if self.rules.exhausts_window(err):
                    self.limiter.burst.penalize(err.retry_after or self.policy.window_s)
            elif resp.status_code >= 500:
                self._count(server_errors=1)
            elif isinstance(err, AuthError):
                err = self.explain(err)
            raise err
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise ServerError(
                "response was not JSON", status=resp.status_code, method=method, path=path
            ) from None

    def explain(self, err: AuthError) -> AuthError:
        """The same error with a one-line summary of what failed and a hint of what to check."""
        code = f"{err.status} {err.category}" if err.category else str(err.status)
        if isinstance(err, PermissionDeniedError):
            scopes = err.missing_scopes
            if scopes:
                why = (
                    f"missing scope {scopes[0]}"
                    if len(scopes) == 1
                    else ("missing one of the scopes " + ", ".join(scopes))
                )
            else:
                why = _clip(err.detail, 160)
            summary = f"{self.service} denied {err.method} {err.path} ({code}): {why}"
            hint = self.hints.forbidden
        else:
            summary = f"{self.service} refused the access token ({code}) at {self.base_url}"
            hint = self.hints.unauthorized
        return type(err)(
            err.detail,
            status=err.status,
            category=err.category,
            correlation_id=err.correlation_id,
            correlation_label=err.correlation_label,
            method=err.method,
            path=err.path,
            retry_after=err.retry_after,
            policy=err.policy,
            body=err.body,
            missing_scopes=err.missing_scopes,
            summary=summary,
            hint=hint,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        attempt = state.attempt_number
        if isinstance(exc, ConnectorError):
            if exc.retry_after is not None:
                return min(exc.retry_after, self.policy.max_total_wait_s)
            if isinstance(exc, RateLimitedError):
                wait = self.rules.rate_limit_wait(exc)
                if wait is not None:
                    return wait
            if isinstance(exc, LockedError):
                return 2.0 + random.uniform(0, 0.5)
            if isinstance(exc, UnreachableError):
                return self.policy.connect_wait_s * 2.0 ** (attempt - 1)
        backoff = min(self.policy.cap_s, self.policy.base_s * (2 ** (attempt - 1)))
        return random.uniform(backoff / 2, backoff)

    def _before_sleep(self, state: RetryCallState) -> None:
        self._count(retries=1)
        exc = state.outcome.exception() if state.outcome else None
        # an unreachable server is retried only briefly and then reported once, in one line
        log.log(
            logging.INFO if isinstance(exc, UnreachableError) else logging.WARNING,
            "retrying after attempt %d: %s",
            state.attempt_number,
            redact(exc) if exc else "unknown error",
        )
