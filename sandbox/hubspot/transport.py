"""HTTP transport of the HubSpot emulator: its request shape, HubSpot's JSON error answer, and
its flavour of the shared request handler (`sandbox.http`) that feeds `SandboxServer.handle`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

from sandbox.http import Drop, Response, SandboxHandler

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


class Handler(SandboxHandler):
    server_version = "heatsync-sandbox/1"

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
