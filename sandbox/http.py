"""What the HubSpot and amoCRM emulators share over HTTP: the answer shape, the stdlib request
handler, and `EmulatorServer` (threaded server lifecycle, state file, fault draws, counters).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, Self, TypeVar
from urllib.parse import urlsplit

from sandbox.persist import JsonFileState, StatePersister


class Drop(Exception):
    """Close the connection without answering."""


@dataclass
class Response:
    status: int
    body: Any = None  # sent as JSON unless `raw` is given
    headers: dict[str, str] | None = None
    raw: bytes | None = None
    content_type: str = "application/json;charset=utf-8"


class FaultOptions(Protocol):
    fail_rate_5xx: float
    latency_ms: int
    drop_rate: float
    drop_after_apply_rate: float
    seed: int
    time_scale: float
    log_requests: bool


class SandboxHandler(BaseHTTPRequestHandler):
    """Turns an HTTP request into the emulator's request object, passes it to the server's
    `handle` and writes the answer; `Drop` closes the connection instead."""

    protocol_version = "HTTP/1.1"
    sys_version = ""

    @property
    def sandbox(self) -> EmulatorServer[Any, Any]:
        return self.server.sandbox  # type: ignore[attr-defined]

    def make_request(self, path: str, query: str, body: bytes) -> Any:
        raise NotImplementedError

    def content_type(self, response: Response, payload: bytes) -> str | None:
        """The Content-Type header of an answer (None: no such header)."""
        raise NotImplementedError

    def sends_length(self, response: Response) -> bool:
        return True

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        try:
            response = self.sandbox.handle(self.make_request(parts.path, parts.query, body))
        except Drop:
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
        kind = self.content_type(response, payload)
        if kind is not None:
            self.send_header("Content-Type", kind)
        if self.sends_length(response):
            self.send_header("Content-Length", str(len(payload)))
        for key, value in (response.headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        if self.sandbox.options.log_requests:
            super().log_message(format, *args)


class Draws(NamedTuple):
    """One request's fault draws, each uniform in [0, 1), and whether a 429 storm takes it."""

    fail: float
    drop: float
    code: float
    applied: float
    jitter: float
    storm: bool


StateT = TypeVar("StateT", bound=JsonFileState)
OptionsT = TypeVar("OptionsT", bound=FaultOptions)


class EmulatorServer(Generic[StateT, OptionsT]):
    """A CRM emulator on a `ThreadingHTTPServer` in a background thread. Use as a context
    manager or call `start()` / `stop()`; subclasses answer requests in `handle`.

    `state_path`: when given, the state is saved there (atomically) at most once per
    `persist_debounce_s` after mutations, and on stop.
    """

    handler_class: ClassVar[type[SandboxHandler]]
    counters: ClassVar[tuple[str, ...]]  # stats besides requests, writes and by_route
    persist_missing: ClassVar[bool] = False  # see `StatePersister(save_missing=...)`
    persist_thread: ClassVar[str] = "sandbox-persist"

    def __init__(
        self,
        state: StateT,
        options: OptionsT,
        port: int,
        host: str,
        state_path: str | Path | None,
        persist_debounce_s: float,
    ) -> None:
        self.state = state
        self.options = options
        self._host, self._port = host, port
        self._state_path = state_path
        self._persist_debounce_s = persist_debounce_s
        self._persister: StatePersister | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._meta = threading.Lock()
        self._storm = 0
        self._seed_rngs(options.seed)
        self.reset_stats()

    def handle(self, req: Any) -> Response:
        """Answer one request (raises Drop to close the connection without an answer)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ lifecycle
    @property
    def lock(self) -> threading.RLock:
        return self.state.lock

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> Self:
        httpd = ThreadingHTTPServer((self._host, self._port), self.handler_class)
        httpd.daemon_threads = True
        httpd.sandbox = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._bound()
        if self._state_path is not None:
            self._persister = StatePersister(
                self.state,
                self._state_path,
                self._persist_debounce_s,
                save_missing=self.persist_missing,
                name=self.persist_thread,
            )
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def _bound(self) -> None:
        """Called by `start` once the port is bound (`base_url` known), before serving."""

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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ control
    def set_faults(self, **changes: Any) -> None:
        """Change options at runtime, e.g. fail_rate_5xx=0.2, latency_ms=50, drop_rate=0.1 (any
        option field); `storm_429=N` answers the next N requests with 429; `seed=S` restarts
        the fault sequence."""
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
        # one stream per fault family: switching one on never shifts another's sequence
        self._rng = random.Random(seed)
        self._apply_rng = random.Random(f"{seed}:drop-after-apply")
        self._jitter_rng = random.Random(f"{seed}:latency-jitter")

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset: requests, writes, by_route and `counters`."""
        with self._meta:
            out = dict(self._stats)
            out["by_route"] = dict(self._stats["by_route"])
            return out

    def reset_stats(self) -> None:
        with self._meta:
            self._stats: dict[str, Any] = {"requests": 0, "writes": 0, "by_route": {}}
            self._stats.update(dict.fromkeys(self.counters, 0))

    def _count(self, name: str) -> None:
        with self._meta:
            self._stats[name] += 1

    # ------------------------------------------------------------------ request pipeline
    def _begin(self, key: str, jitter_ms: float = 0) -> Draws:
        """Count a request under route `key`, draw its faults, wait out its latency and drop
        its connection if so drawn."""
        opts = self.options
        with self._meta:
            self._stats["requests"] += 1
            self._stats["by_route"][key] = self._stats["by_route"].get(key, 0) + 1
            # always the same draws per request, so a seed fixes the whole fault sequence
            rng = self._rng
            draws = Draws(
                fail=rng.random(),
                drop=rng.random(),
                code=rng.random(),
                applied=self._apply_rng.random(),
                jitter=self._jitter_rng.random(),
                storm=self._storm > 0,
            )
            if draws.storm:
                self._storm -= 1
        delay_ms = (opts.latency_ms + draws.jitter * jitter_ms) / opts.time_scale
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if draws.drop < opts.drop_rate:
            self._count("dropped")
            raise Drop()
        return draws

    def _lose_answer(self, draws: Draws, is_write: bool, response: Response) -> None:
        """Drop the connection after an applied write, if so drawn: the write landed (state
        changed, persisted as usual) but its answer is lost."""
        lost = draws.applied < self.options.drop_after_apply_rate
        if is_write and response.status < 300 and lost:
            self._count("dropped_after_apply")
            raise Drop()
