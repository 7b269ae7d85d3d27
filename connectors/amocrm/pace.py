"""One request budget per amoCRM account across processes (a Dagster run's steps run in separate
processes, and amoCRM blocks an account after repeated 429s).

`SharedPaceLimiter` is the shared `connectors.http.RateLimiter` of this process (its threads)
plus a sliding window kept in a small file beside the token store: under an exclusive `flock`,
a request takes a slot when fewer than `limit` requests completed in the last `window_s` seconds
or are still in flight, in any process; it releases the slot with its completion time. In-flight
entries of processes that died are dropped (pid check), as are entries older than
`stale_after_s`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.http import RateLimiter


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FilePace:
    """A sliding window of `limit` requests per `window_s` seconds shared through a file."""

    def __init__(self, path: Path, limit: int, window_s: float, stale_after_s: float = 120.0):
        self.path = Path(path)
        self.limit = limit
        self.window_s = window_s
        self.stale_after_s = stale_after_s

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, list[Any]]]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = b""
                while chunk := os.read(fd, 65536):
                    raw += chunk
                try:
                    data = json.loads(raw or b"{}")
                except ValueError:
                    data = {}
                state = {
                    "done": list(data.get("done") or []),
                    "held": list(data.get("held") or []),
                    "blocked": list(data.get("blocked") or []),  # [until (unix), message]
                }
                yield state
                payload = json.dumps(state).encode()
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, payload)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def acquire(self) -> tuple[str, float]:
        """Take a slot (sleeping until one is free); returns (slot id, seconds slept)."""
        slot = uuid.uuid4().hex
        slept = 0.0
        while True:
            with self._locked() as state:
                now = time.time()
                state["done"] = [t for t in state["done"] if now - float(t) < self.window_s]
                state["held"] = [
                    h
                    for h in state["held"]
                    if now - float(h[2]) < self.stale_after_s and _alive(int(h[1]))
                ]
                if len(state["done"]) + len(state["held"]) < self.limit:
                    state["held"].append([slot, os.getpid(), now])
                    return slot, slept
                wait = (
                    self.window_s - (now - min(float(t) for t in state["done"])) + 0.001
                    if state["done"]
                    else 0.02
                )
            wait = min(max(wait, 0.005), self.window_s)
            time.sleep(wait)
            slept += wait

    def block(self, seconds: float, message: str) -> None:
        """Record that the account is blocked, for every process, until `seconds` from now."""
        with self._locked() as state:
            state["blocked"] = [time.time() + seconds, message]

    def blocked(self) -> str | None:
        """The message of a block recorded by any process, while it lasts."""
        with self._locked() as state:
            block = state["blocked"]
            if len(block) == 2 and time.time() < float(block[0]):
                return str(block[1])
            state["blocked"] = []
            return None

    def release(self, slot: str) -> None:
        with self._locked() as state:
            state["held"] = [h for h in state["held"] if h[0] != slot]
            state["done"].append(time.time())


class SharedPaceLimiter(RateLimiter):
    """The process's limiter plus the account's file window (both must grant a slot)."""

    def __init__(self, path: Path, limit: int, window_s: float) -> None:
        super().__init__(limit, window_s, limit)
        self.pace = FilePace(path, limit, window_s)

    @contextlib.contextmanager
    def slot(self, *, search: bool = False) -> Iterator[float]:
        with super().slot(search=search) as slept:
            slot, waited = self.pace.acquire()
            try:
                yield slept + waited
            finally:
                self.pace.release(slot)


_SHARED: dict[tuple[str, int, float], SharedPaceLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_pace_limiter(path: Path, limit: int, window_s: float) -> SharedPaceLimiter:
    """The limiter of the account whose pace file is `path` (one per process)."""
    key = (str(Path(path).resolve()), limit, window_s)
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = SharedPaceLimiter(Path(path), limit, window_s)
        return limiter
