"""One request budget per amoCRM account across processes (a Dagster run's steps run in separate
processes, and amoCRM blocks an account after repeated 429s).

`FilePace` keeps the pace rule's state (`connectors.amocrm.arrivals`: flights, recent round
trips, recent 429s) in a small file beside the token store and applies the rule under an
exclusive `flock`, so the threads of every process of one account share one budget. Flights of
processes that died are dropped (pid check), as are flights older than the rule's
`stale_after_s`. The file also carries an account block met by any process (`block`).
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

from connectors.amocrm.arrivals import (
    PaceLimiter,
    Rule,
    State,
    finish,
    new_state,
    prune,
    sending,
    strike,
    try_take,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FilePace:
    """The pace rule on a state shared through a file."""

    def __init__(self, path: Path, rule: Rule, poll_s: float | None = None):
        self.path = Path(path)
        self.rule = rule
        # how often a process waiting for another's answer looks again
        self.poll_s = poll_s if poll_s is not None else min(0.01, rule.window_s / 50)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[State]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = b""
                while chunk := os.read(fd, 65536):
                    raw += chunk
                try:
                    data: Any = json.loads(raw or b"{}")
                except ValueError:
                    data = {}
                state = new_state()
                if isinstance(data, dict):
                    for key in (*state, "blocked"):
                        if key in data:
                            state[key] = data[key]
                state.setdefault("blocked", [])  # [until (unix), message]
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
        start = time.time()
        while True:
            with self._locked() as state:
                now = time.time()
                prune(self.rule, state, now, _alive)
                wait = try_take(self.rule, state, now, slot, os.getpid())
            if wait == 0.0:
                return slot, now - start
            time.sleep(self.poll_s if wait is None else max(wait, 0.0005))

    def release(self, slot: str, *, sample: bool = True) -> None:
        with self._locked() as state:
            finish(self.rule, state, slot, time.time(), sample=sample)

    def sending(self, slot: str) -> None:
        with self._locked() as state:
            sending(state, slot, time.time())

    def penalize(self) -> None:
        with self._locked() as state:
            strike(self.rule, state, time.time())

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


class SharedPaceLimiter(PaceLimiter):
    """The account's limiter in this process: the rule on the account's pace file."""

    pace: FilePace

    def __init__(self, path: Path, limit: int, window_s: float) -> None:
        super().__init__(FilePace(path, Rule.for_window(limit, window_s)))


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
