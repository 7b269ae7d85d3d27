"""HTTP transport of the HubSpot emulator: its request shape, HubSpot's JSON error answer, and
its flavour of the shared request handler (`sandbox.http`) that feeds `SandboxServer.handle`,
with the faults that live at the HTTP level: 423 LOCKED on batch writes (`lock_rate`) and answers
cut off mid-body (`cut_rate`), counted in `stats()` as `locked` and `cut`.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import uuid
import weakref
from typing import Any
from urllib.parse import parse_qs

from sandbox.http import Drop, EmulatorServer, Response, SandboxHandler

__all__ = ["ApiError", "Drop", "Handler", "Request", "Response"]


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


class Request:
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


_BATCH_WRITE = re.compile(r"/batch/(?:create|update)/?$")
_RNGS: weakref.WeakKeyDictionary[Any, random.Random] = weakref.WeakKeyDictionary()
_RNG_LOCK = threading.Lock()


def _draw(sandbox: EmulatorServer[Any, Any]) -> tuple[float, float]:
    """(lock, cut) draws of one request, from the server's own seeded stream."""
    with _RNG_LOCK:
        rng = _RNGS.get(sandbox)
        if rng is None:
            rng = _RNGS[sandbox] = random.Random(f"{sandbox.options.seed}:transport")
        return rng.random(), rng.random()


def _count(sandbox: EmulatorServer[Any, Any], name: str) -> None:
    with sandbox._meta:
        sandbox._stats[name] = sandbox._stats.get(name, 0) + 1


class _Cut:
    """The handler's output stream, cut after the headers and half of the body."""

    def __init__(self, inner: Any, connection: socket.socket, sandbox: Any) -> None:
        self._inner, self._connection, self._sandbox = inner, connection, sandbox
        self._writes = 0

    @property
    def closed(self) -> bool:
        return bool(self._inner.closed)

    def write(self, data: bytes) -> int:
        self._writes += 1
        if self._writes == 1:  # the status line and headers
            return int(self._inner.write(data))
        if self._writes == 2:
            _count(self._sandbox, "cut")
            try:
                self._inner.write(bytes(data)[: max(1, len(data) // 2)])
                self._connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(data)

    def flush(self) -> None:
        try:
            self._inner.flush()
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._inner.close()
        except OSError:
            pass


class Handler(SandboxHandler):
    server_version = "heatsync-sandbox/1"

    def _dispatch(self) -> None:
        opts = self.sandbox.options
        if opts.lock_rate or opts.cut_rate:
            lock, cut = _draw(self.sandbox)
            is_batch_write = self.command == "POST" and _BATCH_WRITE.search(self.path.split("?")[0])
            if is_batch_write and lock < opts.lock_rate:
                self._locked()
                return
            if cut < opts.cut_rate:
                self.wfile = _Cut(self.wfile, self.connection, self.sandbox)  # type: ignore[assignment]
                self.close_connection = True
        super()._dispatch()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def _locked(self) -> None:
        """423 as HubSpot answers a write to a record another write holds; nothing applied."""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        _count(self.sandbox, "locked")
        error = ApiError(423, "LOCKED", "The resource is locked by another request. Try again.")
        payload = json.dumps(error.body).encode()
        self.send_response(423)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def make_request(self, path: str, query: str, body: bytes) -> Request:
        return Request(
            self.command, path, parse_qs(query, keep_blank_values=True), self.headers, body
        )

    def content_type(self, response: Response, payload: bytes) -> str | None:
        return response.content_type if payload or response.status != 204 else None

    def log_message(self, format: str, *args: Any) -> None:
        # tokens travel in headers and bodies, except the OAuth token metadata path: mask it
        shown = tuple(
            re.sub(r"(/access-tokens/)[^/\s?\"']+", r"\1***", a) if isinstance(a, str) else a
            for a in args
        )
        super().log_message(format, *shown)
