"""Batched writes to amoCRM API v4 (`PATCH /api/v4/contacts`, `POST /api/v4/tasks`).

amoCRM takes at most 50 elements per request and rejects a whole batch for one invalid element
(400 `validation-errors`). `send_batch` reports the elements the answer names as failed and sends
the rest again; an answer naming none is bisected, so one bad record never loses the others.
Shared by the field write-back (`connectors.amocrm.field_values`) and the tasks
(`connectors.amocrm.tasks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from connectors.http import ConnectorError, RequestError, redact

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _named_failures(exc: ConnectorError) -> dict[str, str]:
    """request_id -> reason for the elements a 400 `validation-errors` answer names."""
    body = exc.body if isinstance(exc.body, dict) else {}
    out: dict[str, str] = {}
    for item in body.get("validation-errors") or []:
        if not isinstance(item, dict):
            continue
        reasons = [
            f"{e.get('code')} at {e.get('path')}: {e.get('detail')}"
            for e in item.get("errors") or []
            if isinstance(e, dict)
        ]
        out[str(item.get("request_id"))] = redact("; ".join(reasons) or "rejected")[:500]
    return out


def send_batch(
    conn: AmoCrmConnector,
    method: str,
    path: str,
    items: list[dict[str, Any]],
    *,
    idempotent: bool,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Send one batch (each item with a `request_id`); returns (answers, failed request ids).

    A 400 rejecting the whole batch: the named elements fail, the others are sent again; an
    answer naming none is bisected down to single elements."""
    try:
        payload = conn.client.request(
            method, path, json_body=items, write=True, idempotent=idempotent
        )
    except RequestError as exc:
        if exc.status not in (400, 422):
            raise
        named = _named_failures(exc)
        ours = {str(i["request_id"]) for i in items}
        failed = {rid: why for rid, why in named.items() if rid in ours}
        rest = [i for i in items if str(i["request_id"]) not in failed]
        if failed and rest:
            answers, more = send_batch(conn, method, path, rest, idempotent=idempotent)
            return answers, {**failed, **more}
        if failed:
            return [], failed
        if len(items) == 1:
            return [], {str(items[0]["request_id"]): redact(str(exc))[:500]}
        half = len(items) // 2
        left, lf = send_batch(conn, method, path, items[:half], idempotent=idempotent)
        right, rf = send_batch(conn, method, path, items[half:], idempotent=idempotent)
        return left + right, {**lf, **rf}
    embedded = (payload or {}).get("_embedded") or {}
    answers = next((v for v in embedded.values() if isinstance(v, list)), [])
    return answers, {}
