"""Shared HTTP plumbing for CRM connectors: sessions, rate limiting, retries, errors, redaction.

The JSON client lives here; its parts live beside it, one job a module, and are re-exported here
so that `from connectors.http import ...` keeps naming all of it: redaction in
`connectors.redaction`, errors and `ServerRules` in `connectors.errors`, the limiters in
`connectors.pacing`.

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
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, stop_after_attempt, stop_after_delay
from urllib3.exceptions import NameResolutionError, NewConnectionError

from connectors.base import RequestStats
from connectors.errors import (
    TRANSIENT_STATUSES,
    AuthError,
    ConflictError,
    ConnectorError,
    ErrorBody,
    LockedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestError,
    ServerError,
    ServerRules,
    TransientError,
    TransportError,
    UnreachableError,
    error_from_response,
)
from connectors.pacing import RateLimiter, SlidingWindow, shared_limiter
from connectors.redaction import (
    RedactingFilter,
    redact,
    register_redaction,
    register_secret,
    secret_field_pattern,
)

__all__ = [
    "TRANSIENT_STATUSES",
    "AuthError",
    "ConflictError",
    "ConnectorError",
    "ErrorBody",
    "Hints",
    "JsonHttp",
    "LockedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RateLimiter",
    "RedactingFilter",
    "RequestError",
    "RetryPolicy",
    "ServerError",
    "ServerRules",
    "SlidingWindow",
    "TransientError",
    "TransportError",
    "UnreachableError",
    "error_from_response",
    "log",
    "make_session",
    "redact",
    "register_redaction",
    "register_secret",
    "secret_field_pattern",
    "shared_limiter",
]

log = logging.getLogger("heatsync.connectors.http")
log.addFilter(RedactingFilter())
# urllib3 logs each request's URL at DEBUG, and some token endpoints carry the token in the path
for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(RedactingFilter())

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


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class JsonHttp:
    """JSON over HTTP with auth headers, rate limiting, retries and counters.

    `auth` returns the headers to send (called before every attempt, so a refreshed token is
    picked up); `on_unauthorized` is called once on a 401 and returns True if retrying makes sense
    (e.g. after refreshing an expired OAuth token). `service` names the server in messages,
    `hints` say what to check when it is unreachable or refuses the credentials, and `rules` read
    its error answers and rate-limit policies. `pool`: connections kept per host, at least the
    number of threads that send at once (`connectors.fanout`).
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
        pool: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.auth = auth
        self.on_unauthorized = on_unauthorized
        self.session = session or make_session(pool=pool)
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
        if resp.status_code == 204:
            return None
        if not resp.content:
            # a 2xx with no body where JSON is due (a proxy's page, a cut answer) is no answer
            # at all, not an empty result: retried like a 5xx, ambiguous for a create
            self._count(server_errors=1)
            raise ServerError(
                "empty answer where JSON was expected",
                status=resp.status_code,
                method=method,
                path=path,
            )
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
