"""The marker heatsync writes into the text of its amoCRM tasks, since amoCRM has no idempotency
key and no field on tasks: `[hs:<rule>:<period>:<hash>]`.

heatsync's task keys read `{account key}:{contact id}:{rule}:{period}`. The task's contact is its
`entity_id` and the account key is the connector's, so the marker carries only rule and period,
plus the first 8 hex digits of the key's SHA-256, which binds it to that account and contact: a
marker copied to another contact, or typed by a person, does not match. A key of any other shape
gets `[hs:<hash>]` (found again by `find_tasks`, not adopted by `extract`).
"""

from __future__ import annotations

import hashlib
import re

MARKER = re.compile(r"\[hs:([A-Za-z0-9_.\-:]+)\]")


def short_hash(task_key: str) -> str:
    return hashlib.sha256(task_key.encode("utf-8")).hexdigest()[:8]


def task_marker(task_key: str) -> str:
    parts = task_key.split(":")
    if len(parts) == 4 and all(parts):
        return f"[hs:{parts[2]}:{parts[3]}:{short_hash(task_key)}]"
    return f"[hs:{short_hash(task_key)}]"


def markers_in(text: str | None) -> list[str]:
    """Every marker in a task's text, as written (`[hs:…]`)."""
    return [m.group(0) for m in MARKER.finditer(text or "")]


def key_from_marker(marker: str, account_key: str, contact_id: str) -> str | None:
    """The task key a marker on `contact_id`'s task stands for, when its hash proves it."""
    match = MARKER.fullmatch(marker)
    if match is None:
        return None
    parts = match.group(1).split(":")
    if len(parts) != 3:
        return None
    key = f"{account_key}:{contact_id}:{parts[0]}:{parts[1]}"
    return key if short_hash(key) == parts[2] else None
