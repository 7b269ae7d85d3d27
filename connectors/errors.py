"""Errors of CRM requests, and the reading of a CRM's error answers (`ServerRules`).

`ConnectorError` and subclasses carry status, category, message and the server's request id,
never a secret (`redact`). Errors a person must act on (`AuthError`, `PermissionDeniedError`,
`UnreachableError`) read as one line saying what failed and what to check (`hint`).
`error_from_response` turns a non-2xx answer into the right class, read by the CRM's rules.
All of it is re-exported by `connectors.http`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from connectors.redaction import redact

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


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff
