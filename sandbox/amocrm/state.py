"""The amoCRM sandbox account's state: entities in API v4 shapes, and its JSON persistence.

Everything is kept as plain JSON-able dicts, close to what `/api/v4` returns: the account, users,
task types, lead pipelines with their statuses, custom field definitions per entity, contacts,
leads (with their linked contacts), notes per entity, tasks, events (oldest first; the API lists
them newest first) and the OAuth token registry (hashes only, never a token). `render.py` fills a
state from the neutral demo portal; `AmoState.save/load` (`sandbox.persist`) keep it in a file.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.persist import JsonFileState

FORMAT = "heatsync-sandbox-amocrm/1"
WON_STATUS_ID = 142
LOST_STATUS_ID = 143
ENTITY_TYPES = ("contacts", "leads")
_BASE32 = "0123456789abcdefghjkmnpqrstvwxyz"


def now_s() -> int:
    return int(time.time())


def local_midnight(day: date, tz: str) -> int:
    """Unix seconds of 00:00 of `day` in time zone `tz` (how amoCRM stores date fields)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp())


def local_date(ts: int, tz: str) -> date:
    """The calendar date of unix seconds `ts` in time zone `tz`."""
    return datetime.fromtimestamp(ts, tz=UTC).astimezone(ZoneInfo(tz)).date()


def _b32(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(_BASE32[value & 31])
        value >>= 5
    return "".join(reversed(out))


def event_id(ms: int, seq: int) -> str:
    """A 26-character lower-case id in the style of amoCRM's event ids ("01" + time-ordered)."""
    mix = hashlib.blake2b(f"{ms}:{seq}".encode(), digest_size=5).digest()
    return "01" + _b32(ms, 10) + _b32(seq, 6) + _b32(int.from_bytes(mix, "big"), 8)


class AmoState(JsonFileState):
    """The whole emulated account. Mutate only under `lock` while a server runs."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.account: dict[str, Any] = {}
        self.users: list[dict[str, Any]] = []
        self.task_types: list[dict[str, Any]] = []
        self.pipelines: list[dict[str, Any]] = []
        self.custom_fields: dict[str, list[dict[str, Any]]] = {e: [] for e in ENTITY_TYPES}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.notes: dict[str, dict[int, dict[str, Any]]] = {e: {} for e in ENTITY_TYPES}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.oauth: dict[str, dict[str, dict[str, Any]]] = {
            "codes": {},
            "refresh": {},
            "access": {},
        }
        self.next_ids: dict[str, int] = {}
        self.meta: dict[str, Any] = {}
        self.version = 0  # bumped on every mutation (persistence watches it)
        self._event_seq = 0

    # ------------------------------------------------------------------ account helpers
    @property
    def account_id(self) -> int:
        return int(self.account["id"])

    @property
    def timezone(self) -> str:
        return str(self.account.get("timezone") or "UTC")

    @property
    def api_user_id(self) -> int:
        """The user the API acts as (the admin who created the integration)."""
        return int(self.account["current_user_id"])

    def user_ids(self) -> set[int]:
        return {int(u["id"]) for u in self.users}

    def status_ids(self) -> dict[int, int]:
        """status id -> pipeline id (142/143 exist in every pipeline; the first one wins)."""
        out: dict[int, int] = {}
        for pipeline in self.pipelines:
            for status in pipeline["statuses"]:
                out.setdefault(int(status["id"]), int(pipeline["id"]))
        return out

    def field(self, entity: str, *, field_id: Any = None, code: Any = None) -> dict | None:
        for definition in self.custom_fields[entity]:
            if field_id is not None and definition["id"] == field_id:
                return definition
            if code is not None and field_id is None and definition.get("code") == code:
                return definition
        return None

    def new_id(self, kind: str) -> int:
        value = self.next_ids.get(kind, 1)
        self.next_ids[kind] = value + 1
        return value

    def bump_id(self, kind: str, used: int) -> None:
        self.next_ids[kind] = max(self.next_ids.get(kind, 1), used + 1)

    # ------------------------------------------------------------------ events
    def add_event(
        self,
        type_: str,
        entity_type: str,
        entity_id: int,
        created_at: int,
        created_by: int,
        value_after: list[dict[str, Any]] | None = None,
        value_before: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Append an event (callers add in time order; `sort_events` restores it otherwise)."""
        self._event_seq += 1
        event = {
            "id": event_id(created_at * 1000, self._event_seq),
            "type": type_,
            "entity_id": entity_id,
            "entity_type": entity_type,
            "created_by": created_by,
            "created_at": created_at,
            "value_after": value_after or [],
            "value_before": value_before or [],
            "account_id": self.account_id,
        }
        self.events.append(event)
        self.version += 1
        return event

    def sort_events(self) -> None:
        self.events.sort(key=lambda e: (e["created_at"], e["id"]))

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "format": FORMAT,
                "account": self.account,
                "users": self.users,
                "task_types": self.task_types,
                "pipelines": self.pipelines,
                "custom_fields": self.custom_fields,
                "contacts": list(self.contacts.values()),
                "leads": list(self.leads.values()),
                "notes": {e: list(n.values()) for e, n in self.notes.items()},
                "tasks": list(self.tasks.values()),
                "events": self.events,
                "oauth": self.oauth,
                "next_ids": self.next_ids,
                "event_seq": self._event_seq,
                "meta": self.meta,
            }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AmoState:
        if data.get("format") != FORMAT:
            raise ValueError(f"not an amoCRM sandbox state (format {data.get('format')!r})")
        data = copy.deepcopy(data)
        state = cls()
        state.account = data["account"]
        state.users = data["users"]
        state.task_types = data["task_types"]
        state.pipelines = data["pipelines"]
        state.custom_fields = {e: data["custom_fields"].get(e, []) for e in ENTITY_TYPES}
        state.contacts = {int(c["id"]): c for c in data["contacts"]}
        state.leads = {int(lead["id"]): lead for lead in data["leads"]}
        state.notes = {e: {int(n["id"]): n for n in data["notes"].get(e, [])} for e in ENTITY_TYPES}
        state.tasks = {int(t["id"]): t for t in data["tasks"]}
        state.events = data["events"]
        state.oauth = data["oauth"]
        state.next_ids = data["next_ids"]
        state._event_seq = int(data.get("event_seq", len(state.events)))
        state.meta = data.get("meta", {})
        state.version = 0
        return state
