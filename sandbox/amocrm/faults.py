"""Rate limit, account block and injected faults of the amoCRM sandbox.

amoCRM answers too many requests per second with 429 and, after repeated 429s, blocks the
account with 403; both bodies are HTML pages from the edge (nginx), not JSON, and carry no
Retry-After. Injected 5xx answers are HTML too.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time

from sandbox.amocrm.common import HTML, AmoOptions, Response

_PAGE = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_REASONS = {
    403: "Forbidden",
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def html_page(code: int) -> Response:
    """An nginx-style HTML error page, without Retry-After."""
    body = _PAGE.format(code=code, reason=_REASONS[code]).encode()
    return Response(code, raw=body, content_type=HTML)


def server_error(u: float) -> Response:
    """502, 503 or 504 (by `u` in [0, 1))."""
    return html_page((502, 503, 504)[min(2, int(u * 3))])


class Limiter:
    """7 requests per second per account (sliding window) and the block after repeated 429s."""

    def __init__(self, options: AmoOptions) -> None:
        self.options = options
        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._window: collections.deque[float] = collections.deque()
        self._limited: collections.deque[float] = collections.deque()
        self.blocked_until = 0.0

    def blocked(self) -> bool:
        with self._lock:
            return self._clock() < self.blocked_until

    def block(self, seconds: float | None = None) -> None:
        """Block the account now (for `seconds`, default `block_s`)."""
        with self._lock:
            span = self.options.block_s if seconds is None else seconds
            self.blocked_until = self._clock() + span
            self._limited.clear()

    def unblock(self) -> None:
        with self._lock:
            self.blocked_until = 0.0
            self._limited.clear()
            self._window.clear()

    def note_429(self) -> None:
        """Count an answered 429; enough of them within the window block the account."""
        opts = self.options
        with self._lock:
            now = self._clock()
            self._limited.append(now)
            while self._limited and self._limited[0] <= now - opts.block_window_s / opts.time_scale:
                self._limited.popleft()
            if opts.block_after_429 > 0 and len(self._limited) >= opts.block_after_429:
                self.blocked_until = now + opts.block_s
                self._limited.clear()

    def admit(self, at: float | None = None) -> bool:
        """Whether one more request fits in the second up to `at` (its arrival on the
        monotonic clock, default now; it is then counted). A request counted at the arrival the
        latency gives it, not when its thread next runs, keeps the emulator's scheduling out of
        the count; requests counted earlier but arriving later count against it too."""
        span = 1.0 / self.options.time_scale
        with self._lock:
            now = self._clock()
            at = now if at is None else min(at, now)
            while self._window and self._window[0] <= now - 2 * span:
                self._window.popleft()
            inside = len(self._window) - bisect.bisect_right(self._window, at - span)
            if inside >= self.options.rate_per_second:
                return False
            self._window.insert(bisect.bisect_right(self._window, at), at)
            return True
