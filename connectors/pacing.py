"""Client-side pacing for CRM requests: sliding-window budgets, shared by an account's clients.

`RateLimiter` holds a burst budget per rolling window and a separate per-second search budget; it
sleeps before a request instead of letting the server answer 429. Clients of one account share
one limiter (`shared_limiter`). Re-exported by `connectors.http`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any


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
        self,
        burst_limit: int,
        burst_window_s: float,
        search_per_second: int,
        margin: int = 0,
        search_window_s: float = 1.0,
    ) -> None:
        self.burst = SlidingWindow(max(1, burst_limit - margin), burst_window_s)
        self.search = SlidingWindow(max(1, search_per_second), search_window_s)

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
    account: str,
    burst_limit: int,
    burst_window_s: float,
    search_per_second: int,
    margin: int = 0,
    search_window_s: float = 1.0,
) -> RateLimiter:
    """The process-wide limiter for `account` (an opaque key naming the server and credential)."""
    key = (account, burst_limit, burst_window_s, search_per_second, margin, search_window_s)
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = RateLimiter(
                burst_limit, burst_window_s, search_per_second, margin, search_window_s
            )
        return limiter
