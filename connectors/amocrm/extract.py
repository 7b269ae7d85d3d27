"""amoCRM -> canonical tables (scoring.contract).

Each record is mapped on its own; one that cannot be mapped (no id, no creation time, a
non-numeric call duration, a birthday that is not a calendar date) goes to the quarantine frame
with a reason and is counted, never crashing the run and never silently dropped.

- contacts (`GET /api/v4/contacts`): name, first PHONE and EMAIL of the multitext fields, owner =
  `responsible_user_id` (ids in `settings.unowned_user_ids` mean nobody), birthday from a
  `birthday` field (local midnight in the account's time zone -> calendar date), source / VIP /
  do-not-contact from fields found by id, code or name, heatsync's own fields (by code) as
  `current_*`.
- leads -> deals (`GET /api/v4/leads?with=contacts`): status 142 won, 143 lost, else open; stage =
  the status name; amount = price; one row per linked contact.
- activities: contact notes (`GET /api/v4/contacts/notes`): call_in/call_out -> call with
  direction, duration and outcome (call_status); sms_in/sms_out -> sms; common and
  service_message notes -> note, or the canonical type of a leading `[tag]`; the same notes on
  leads (`GET /api/v4/leads/notes`) count for each contact of the lead. Chat messages come
  from events (`incoming_chat_message`/`outgoing_chat_message`). Tasks: completed meetings
  (type 2) -> meeting with the outcome of a `[meeting <outcome>]` result, open ones scheduled;
  other completed tasks -> task_completed. heatsync's own tasks and notes (marked `[hs:…]`) are
  never activity; its tasks are returned as `own_tasks`.
- incremental: a cursor per object (`updated_at` for contacts, leads, notes and tasks;
  `created_at` for events), the window starting `overlap_s` before the cursor and ending at
  `until`. Deleted contacts are learnt from `contact_deleted` events.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from connectors.amocrm.labels import LABELS
from connectors.amocrm.markers import key_from_marker, markers_in
from connectors.amocrm.models import CustomField
from connectors.amocrm.settings import (
    CALL_STATUS_OUTCOMES,
    CHAT_EVENT_TYPES,
    CURSOR_OBJECTS,
    FIELD_CODES,
    LOST_STATUS_ID,
    MEETING_TASK_TYPE_ID,
    NOTE_TYPES,
    REMOVAL_EVENT_TYPES,
    UPDATED_AT_CODE,
    WON_STATUS_ID,
)
from connectors.base import OWN_TASK_COLUMNS, QUARANTINE_COLUMNS, ExtractResult, empty_own_tasks
from connectors.http import log, redact
from scoring import contract

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector

TEXT_MAX = 500
ACTIVITY_EXTRA = {"crm_id": "str", "crm_type": "str"}
# how far from local midnight a date value may be and still be read as that day (a time zone
# shift of the writer); further off, the day is ambiguous
MIDNIGHT_TOLERANCE_S = 3 * 3600
MEETING_OUTCOME = re.compile(r"^\s*\[\s*meeting\s+([a-z_]+)\s*\]", re.I)
NOTE_TAG = re.compile(r"^\s*\[\s*([A-Za-z_]+)(?:\s+(inbound|outbound))?\s*\]\s*(.*)$", re.S | re.I)


class Bad(ValueError):
    """A record that cannot be mapped; the message is the quarantine reason."""


# --------------------------------------------------------------------------------------------
# Values


def ts(value: Any, what: str) -> datetime:
    """Unix seconds (or an ISO 8601 string) -> aware UTC datetime."""
    if value is None or value == "" or isinstance(value, bool):
        raise Bad(f"{what}: missing")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Bad(f"{what}: not a timestamp: {text[:40]!r}") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def opt_ts(value: Any, what: str) -> datetime | None:
    return None if value in (None, "", 0) else ts(value, what)


def number(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Bad(f"{what}: not a number: {value!r}")
    try:
        out = float(str(value).strip())
    except ValueError:
        raise Bad(f"{what}: not a number: {str(value)[:40]!r}") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise Bad(f"{what}: not a finite number: {value!r}")
    return out


def calendar_date(value: Any, tz: ZoneInfo, what: str) -> date:
    """A date field's value -> the calendar day it stands for in the account's time zone.

    amoCRM stores date and birthday fields as 00:00 of the day in the account's time zone. A value
    within MIDNIGHT_TOLERANCE_S of a local midnight is read as that midnight's day (a writer in
    another time zone); anything else is ambiguous and raises Bad.
    """
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}", value.strip()):
        text = value.strip()
        if len(text) == 10:
            return date.fromisoformat(text)
    moment = ts(value, what).astimezone(tz)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    after = (moment - midnight).total_seconds()
    if after <= MIDNIGHT_TOLERANCE_S:
        return midnight.date()
    if 86_400 - after <= MIDNIGHT_TOLERANCE_S:
        return (midnight + timedelta(days=1)).date()
    raise Bad(
        f"{what}: {moment.isoformat()} is not midnight in {tz.key}, so its calendar day is "
        "ambiguous"
    )


def clip(text: Any, limit: int = TEXT_MAX) -> str | None:
    if text is None:
        return None
    out = " ".join(str(text).split())
    if not out:
        return None
    return out if len(out) <= limit else out[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Fields


class FieldMap:
    """The account's contact fields heatsync reads, resolved once per extract."""

    def __init__(self, fields: list[CustomField], conn: AmoCrmConnector) -> None:
        s = conn.settings
        self.by_id = {f.id: f for f in fields}
        self.phone = self._find(fields, ("PHONE",), None)
        self.email = self._find(fields, ("EMAIL",), None)
        self.birthday = self._find(fields, s.birthday_fields, "birthday")
        self.source = self._find(fields, s.source_fields, None)
        self.vip = self._find(fields, s.vip_fields, None)
        self.do_not_contact = self._find(fields, s.do_not_contact_fields, None)
        self.ours = {name: self._find(fields, (code,), None) for name, code in FIELD_CODES.items()}
        self.updated_at = self._find(fields, (UPDATED_AT_CODE,), None)

    @staticmethod
    def _find(fields: list[CustomField], names: Iterable[str], type_: str | None) -> int | None:
        for name in names:
            wanted = str(name).strip().lower()
            for f in fields:
                if str(f.id) == wanted or (f.code or "").lower() == wanted:
                    return f.id
            for f in fields:
                if f.name.strip().lower() == wanted:
                    return f.id
        if type_ is not None:
            for f in fields:
                if f.type == type_:
                    return f.id
        return None

    def enum_code(self, field_id: int, value: dict[str, Any]) -> str | None:
        """The enum's code of a select value (from the value or the field's definition)."""
        if value.get("enum_code"):
            return str(value["enum_code"])
        definition = self.by_id.get(field_id)
        if definition is not None and value.get("enum_id") is not None:
            enum = definition.enum_by_id().get(int(value["enum_id"]))
            if enum is not None and enum.code:
                return enum.code
        return None


def _values(contact: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for entry in contact.get("custom_fields_values") or []:
        if isinstance(entry, dict) and entry.get("field_id") is not None:
            values = entry.get("values") or []
            out[int(entry["field_id"])] = [v for v in values if isinstance(v, dict)]
    return out


def _first(values: dict[int, list[dict[str, Any]]], field_id: int | None) -> Any:
    if field_id is None:
        return None
    found = values.get(field_id) or []
    return found[0].get("value") if found else None


_OPTION_TEXTS: dict[str, dict[str, str]] = {}


def option_code(kind: str, code: str | None, text: Any) -> str | None:
    """A select value of heatsync's field -> canonical value (by enum code, else by label)."""
    if code:
        return code.lower()
    if text is None:
        return None
    if kind not in _OPTION_TEXTS:
        table: dict[str, str] = {}
        for labels in LABELS.values():
            for key, label in labels.items():
                if key.startswith(kind + "."):
                    table[label.strip().lower()] = key.split(".", 1)[1]
        _OPTION_TEXTS[kind] = table
    lowered = str(text).strip().lower()
    return _OPTION_TEXTS[kind].get(lowered, lowered or None)


# --------------------------------------------------------------------------------------------
# The extract


class Extraction:
    """One extract of one account (keeps the bookkeeping out of the connector)."""

    def __init__(self, conn: AmoCrmConnector, cursors: dict[str, str] | None, until: datetime):
        self.conn = conn
        self.client = conn.client
        self.settings = conn.settings
        self.portal = conn.settings.portal
        info = conn.portal_info()
        self.account_key = f"{conn.crm}-{info.portal_id}"
        self.tz = ZoneInfo(info.time_zone)
        self.currency = info.currency
        self.until = until if until.tzinfo else until.replace(tzinfo=UTC)
        self.cursors = dict(cursors or {})
        self.full = not self.cursors
        self.warnings: Counter[str] = Counter()
        self.quarantine: list[dict[str, Any]] = []
        self.removed: set[str] = set()
        self.lead_contacts: dict[str, list[str]] = {}  # lead id -> linked contact ids
        flag = conn.settings.api_filter
        self.filtering = (
            flag if flag is not None else conn.account().api_filter_enabled is not False
        )
        if not self.filtering:
            self.warnings["api_filter_off"] += 1

    # -- helpers -----------------------------------------------------------------------------
    def updated(
        self, path: str, key: str, name: str, extra: list[tuple[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """Contacts or leads updated in the window: by filter[updated_at], or, without the API
        filtering add-on, newest first (`order[updated_at]=desc`) until older than the window."""
        if self.filtering:
            yield from self.client.pages(path, key, [*extra, *self.window(name, "updated_at")])
            return
        since = self.cursors.get(name)
        low = None
        if since:
            start = ts(since, f"cursor {name}") - timedelta(seconds=self.settings.overlap_s)
            low = int(start.timestamp())
        high = int(self.until.timestamp())
        for item in self.client.pages(path, key, [*extra, ("order[updated_at]", "desc")]):
            try:
                stamp = int(item.get("updated_at"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                yield item  # mapped (and quarantined) like any other record
                continue
            if stamp > high:
                continue  # changed after `until`: the next run reads it
            if low is not None and stamp < low:
                return  # newest first: everything after this is older
            yield item

    def window(self, name: str, field: str) -> list[tuple[str, Any]]:
        since = self.cursors.get(name)
        params: list[tuple[str, Any]] = [(f"filter[{field}][to]", int(self.until.timestamp()))]
        if since:
            start = ts(since, f"cursor {name}") - timedelta(seconds=self.settings.overlap_s)
            params.insert(0, (f"filter[{field}][from]", max(0, int(start.timestamp()))))
        return params

    def q(self, object_type: str, record: Any, reason: str) -> None:
        object_id = record.get("id") if isinstance(record, dict) else None
        try:
            payload = json.dumps(record, default=str, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError):
            payload = repr(record)
        self.quarantine.append(
            {
                "portal": self.portal,
                "object_type": object_type,
                "object_id": None if object_id in (None, "") else str(object_id),
                "reason": redact(reason)[:500],
                "payload": redact(payload),
            }
        )

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> ExtractResult:
        fields = FieldMap(self.client.custom_fields("contacts"), self.conn)
        events = list(
            self.client.pages(
                "/events",
                "events",
                [
                    *[("filter[type][]", t) for t in (*CHAT_EVENT_TYPES, *REMOVAL_EVENT_TYPES)],
                    *self.window("events", "created_at"),
                ],
                limit=self.settings.events_page_size,
            )
        )
        for event in events:
            if event.get("type") in REMOVAL_EVENT_TYPES and event.get("entity_id") is not None:
                self.removed.add(str(event["entity_id"]))

        contact_rows = []
        for raw in self.updated("/contacts", "contacts", "contacts", []):
            row = self.contact(raw, fields)
            if row is not None:
                contact_rows.append(row)

        activity_rows: list[dict[str, Any]] = []
        notes = self.client.pages(
            "/contacts/notes",
            "notes",
            [
                *[("filter[note_type][]", t) for t in NOTE_TYPES],
                *self.window("notes", "updated_at"),
            ],
        )
        for note in notes:
            act = self.note(note)
            if act is not None:
                activity_rows.append(act)
        for event in events:
            if event.get("type") in CHAT_EVENT_TYPES:
                act = self.chat(event)
                if act is not None:
                    activity_rows.append(act)
        own_tasks: list[dict[str, Any]] = []
        tasks = self.client.pages(
            "/tasks",
            "tasks",
            [("filter[entity_type]", "contacts"), *self.window("tasks", "updated_at")],
        )
        for task in tasks:
            act = self.task(task, own_tasks)
            if act is not None:
                activity_rows.append(act)

        deal_rows = self.deals()
        activity_rows.extend(self.lead_notes())

        activity_rows = [r for r in activity_rows if r["contact_id"] not in self.removed]
        deal_rows = [r for r in deal_rows if r["contact_id"] not in self.removed]
        contact_rows = [r for r in contact_rows if r["contact_id"] not in self.removed]
        if self.quarantine:
            self.warnings["quarantined"] += len(self.quarantine)
            log.warning("%s: quarantined %d record(s)", self.portal, len(self.quarantine))
        cursor = self.until.astimezone(UTC).isoformat()
        return ExtractResult(
            contacts=contract.conform(pd.DataFrame(contact_rows), "contacts"),
            activities=_activities_frame(activity_rows),
            deals=contract.conform(pd.DataFrame(deal_rows), "deals"),
            quarantine=pd.DataFrame(self.quarantine, columns=list(QUARANTINE_COLUMNS)),
            removed_contact_ids=sorted(self.removed, key=lambda v: (len(v), v)),
            cursors={name: cursor for name in CURSOR_OBJECTS},
            full=self.full,
            warnings=dict(self.warnings),
            own_tasks=_own_tasks_frame(own_tasks),
        )

    # -- contacts ----------------------------------------------------------------------------
    def contact(self, raw: dict[str, Any], fields: FieldMap) -> dict[str, Any] | None:
        try:
            if raw.get("id") in (None, ""):
                raise Bad("id: missing")
            if raw.get("is_deleted"):
                self.removed.add(str(raw["id"]))
                return None
            cid = str(raw["id"])
            values = _values(raw)
            created = ts(raw.get("created_at"), "created_at")
            owner = raw.get("responsible_user_id")
            if owner in (None, 0) or int(owner) in self.settings.unowned_user_ids:
                owner = None
            name = clip(raw.get("name"), 300) or clip(
                " ".join(str(raw.get(k) or "") for k in ("first_name", "last_name")), 300
            )
            row: dict[str, Any] = {
                "contact_id": cid,
                "portal": self.portal,
                "created_at": created,
                "owner_id": None if owner is None else str(owner),
                "name": name,
                "email": clip(_first(values, fields.email), 300),
                "phone": clip(_first(values, fields.phone), 100),
                "source": self.source(values, fields),
                "lifecycle_stage": None,
                "birthday": None,
                "do_not_contact": _first(values, fields.do_not_contact) is True,
                "is_vip": _first(values, fields.vip) is True,
            }
            row.update(self.current(values, fields))
        except Bad as exc:
            self.q("contacts", raw, str(exc))
            return None
        except (TypeError, ValueError) as exc:
            self.q("contacts", raw, f"unexpected shape: {exc}")
            return None
        birthday = _first(values, fields.birthday)
        if birthday not in (None, ""):
            try:
                row["birthday"] = calendar_date(birthday, self.tz, "birthday")
            except Bad as exc:
                # the contact is kept (scored without a birthday); the value is quarantined
                self.warnings["birthday_unreadable"] += 1
                self.q("contacts", raw, f"{exc}; the contact is kept without a birthday")
        return row

    def source(self, values: dict[int, list[dict[str, Any]]], fields: FieldMap) -> str | None:
        if fields.source is None:
            return None
        found = values.get(fields.source) or []
        if not found:
            return None
        mapping = {k.strip().lower(): v for k, v in self.settings.source_map.items()}
        code = fields.enum_code(fields.source, found[0])
        for key in (code, found[0].get("value")):
            if key is not None and str(key).strip().lower() in mapping:
                return mapping[str(key).strip().lower()]
        return "other"

    def current(self, values: dict[int, list[dict[str, Any]]], fields: FieldMap) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field_id in fields.ours.items():
            key = f"current_{name}"
            found = values.get(field_id) if field_id is not None else None
            if not found:
                out[key] = None
                continue
            value = found[0]
            assert field_id is not None
            if name in ("temperature", "segment", "trend"):
                out[key] = option_code(name, fields.enum_code(field_id, value), value.get("value"))
            elif name in ("score", "touches_30d"):
                out[key] = number(value.get("value"), name)
            elif name == "next_touch_due":
                out[key] = _naive(calendar_date(value.get("value"), self.tz, name))
            else:
                out[key] = value.get("value")
        stamp = _first(values, fields.updated_at)
        out["current_updated_at"] = (
            None if stamp in (None, "") else _naive(calendar_date(stamp, self.tz, "updated_at"))
        )
        return out

    # -- activities --------------------------------------------------------------------------
    def note(self, note: dict[str, Any], object_type: str = "notes") -> dict[str, Any] | None:
        try:
            if note.get("id") in (None, "") or note.get("entity_id") in (None, ""):
                raise Bad("id or entity_id: missing")
            params = note.get("params") if isinstance(note.get("params"), dict) else {}
            assert isinstance(params, dict)
            kind = str(note.get("note_type") or "")
            row: dict[str, Any] = {
                "activity_id": f"note:{note['id']}",
                "contact_id": str(note["entity_id"]),
                "portal": self.portal,
                "occurred_at": ts(note.get("created_at"), "created_at"),
                "direction": None,
                "outcome": None,
                "duration_s": None,
                "text": None,
                "is_rollup": False,
                "crm_id": str(note["id"]),
                "crm_type": f"note:{kind}",
            }
            if kind in ("call_in", "call_out"):
                row["type"] = "call"
                row["direction"] = "inbound" if kind == "call_in" else "outbound"
                row["duration_s"] = number(params.get("duration"), "duration")
                status = params.get("call_status")
                if status not in (None, ""):
                    row["outcome"] = CALL_STATUS_OUTCOMES.get(
                        int(number(status, "call_status") or 0)
                    )
                row["text"] = clip(params.get("call_result"))
            elif kind in ("sms_in", "sms_out"):
                row["type"] = "sms"
                row["direction"] = "inbound" if kind == "sms_in" else "outbound"
                row["text"] = clip(params.get("text"))
            else:
                text = str(params.get("text") or "")
                if markers_in(text) or str(params.get("service") or "").lower() == "heatsync":
                    return None  # heatsync's own note
                row["type"], row["text"] = "note", clip(text)
                match = NOTE_TAG.match(text)
                if match and match.group(1).lower() in self.settings.note_tags:
                    row["type"] = match.group(1).lower()
                    row["direction"] = match.group(2).lower() if match.group(2) else None
                    row["text"] = clip(match.group(3))
            return row
        except Bad as exc:
            self.q(object_type, note, str(exc))
        except (TypeError, ValueError) as exc:
            self.q(object_type, note, f"unexpected shape: {exc}")
        return None

    def chat(self, event: dict[str, Any]) -> dict[str, Any] | None:
        try:
            entity = event.get("entity_type")
            contact = event.get("entity_id") if entity == "contact" else None
            if contact is None:
                contact = event.get("linked_talk_contact_id")
            if contact in (None, ""):
                self.warnings["chat_without_contact"] += 1
                return None
            inbound = event.get("type") == "incoming_chat_message"
            return {
                "activity_id": f"chat:{event['id']}",
                "contact_id": str(contact),
                "portal": self.portal,
                "occurred_at": ts(event.get("created_at"), "created_at"),
                "type": "chat_message",
                "direction": "inbound" if inbound else "outbound",
                "outcome": None,
                "duration_s": None,
                "text": None,
                "is_rollup": False,
                "crm_id": str(event["id"]),
                "crm_type": f"event:{event.get('type')}",
            }
        except (Bad, KeyError) as exc:
            self.q("events", event, str(exc))
            return None

    def task(self, task: dict[str, Any], own: list[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            if task.get("id") in (None, "") or task.get("entity_id") in (None, ""):
                return None  # a task on no contact is nobody's activity
            contact = str(task["entity_id"])
            marks = markers_in(str(task.get("text") or ""))
            if marks:
                for mark in marks:
                    key = key_from_marker(mark, self.account_key, contact)
                    if key is not None:
                        created = ts(task.get("created_at"), "created_at")
                        own.append(
                            {"task_key": key, "task_id": str(task["id"]), "created_at": created}
                        )
                return None  # heatsync's own task: never the contact's activity
            done = bool(task.get("is_completed"))
            result = task.get("result") if isinstance(task.get("result"), dict) else {}
            assert isinstance(result, dict)
            row: dict[str, Any] = {
                "activity_id": f"task:{task['id']}",
                "contact_id": contact,
                "portal": self.portal,
                "direction": None,
                "outcome": None,
                "duration_s": None,
                "text": clip(task.get("text")),
                "is_rollup": False,
                "crm_id": str(task["id"]),
                "crm_type": "task",
            }
            if int(task.get("task_type_id") or 0) == MEETING_TASK_TYPE_ID:
                duration = number(task.get("duration"), "duration") or 0.0
                till = ts(task.get("complete_till"), "complete_till")
                row["type"] = "meeting"
                row["activity_id"] = f"meeting:{task['id']}"
                row["occurred_at"] = till - timedelta(seconds=duration)
                row["duration_s"] = duration or None
                if not done:
                    row["outcome"] = "scheduled"
                else:
                    match = MEETING_OUTCOME.match(str(result.get("text") or ""))
                    outcome = match.group(1).lower() if match else "completed"
                    row["outcome"] = (
                        outcome if outcome in contract.MEETING_OUTCOMES else "completed"
                    )
                return row
            if not done:
                return None
            row["type"] = "task_completed"
            row["occurred_at"] = ts(
                task.get("updated_at") or task.get("complete_till"), "updated_at"
            )
            return row
        except Bad as exc:
            self.q("tasks", task, str(exc))
        except (TypeError, ValueError) as exc:
            self.q("tasks", task, f"unexpected shape: {exc}")
        return None

    # -- deals -------------------------------------------------------------------------------
    def deals(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        leads = list(self.updated("/leads", "leads", "leads", [("with", "contacts")]))
        if not leads:
            return rows
        stages: dict[tuple[int | None, int], str] = {}
        for pipeline in self.client.pipelines():
            for step in pipeline.statuses:
                stages[(pipeline.id, step.id)] = step.name
                stages.setdefault((None, step.id), step.name)
        for lead in leads:
            try:
                if lead.get("id") in (None, ""):
                    raise Bad("id: missing")
                if lead.get("is_deleted"):
                    continue
                status_id = int(lead.get("status_id") or 0)
                pipeline_id = lead.get("pipeline_id")
                status = (
                    "won"
                    if status_id == WON_STATUS_ID
                    else "lost"
                    if status_id == LOST_STATUS_ID
                    else "open"
                )
                stage = stages.get((pipeline_id, status_id)) or stages.get((None, status_id))
                base = {
                    "deal_id": str(lead["id"]),
                    "portal": self.portal,
                    "created_at": ts(lead.get("created_at"), "created_at"),
                    "closed_at": (
                        opt_ts(lead.get("closed_at"), "closed_at") if status != "open" else None
                    ),
                    "status": status,
                    "stage": stage or str(status_id),
                    "stage_probability": {"won": 1.0, "lost": 0.0}.get(status),
                    "amount": number(lead.get("price"), "price"),
                    "currency": self.currency,
                    "name": clip(lead.get("name"), 300),
                }
            except Bad as exc:
                self.q("leads", lead, str(exc))
                continue
            except (TypeError, ValueError) as exc:
                self.q("leads", lead, f"unexpected shape: {exc}")
                continue
            linked = _linked_contacts(lead)
            self.lead_contacts[str(lead["id"])] = linked
            if not linked:
                self.warnings["deal_without_contact"] += 1
            for contact_id in linked:
                rows.append({**base, "contact_id": contact_id})
        return rows

    def lead_notes(self) -> list[dict[str, Any]]:
        """Notes on leads (telephony often logs calls on the lead), one row per linked contact."""
        notes = list(
            self.client.pages(
                "/leads/notes",
                "notes",
                [
                    *[("filter[note_type][]", t) for t in NOTE_TYPES],
                    *self.window("notes", "updated_at"),
                ],
            )
        )
        unknown = sorted(
            {str(n.get("entity_id")) for n in notes} - set(self.lead_contacts) - {"None", ""}
        )
        for part in range(0, len(unknown), self.settings.batch_size):
            ids = unknown[part : part + self.settings.batch_size]
            params: list[tuple[str, Any]] = [("with", "contacts")]
            params.extend(("filter[id][]", i) for i in ids)
            for lead in self.client.pages("/leads", "leads", params):
                self.lead_contacts[str(lead.get("id"))] = _linked_contacts(lead)
        rows = []
        for note in notes:
            contacts = self.lead_contacts.get(str(note.get("entity_id")), [])
            if not contacts:
                self.warnings["lead_note_without_contact"] += 1
                continue
            row = self.note(note, object_type="lead_notes")
            if row is None:
                continue
            for contact_id in contacts:
                lead_id = note["entity_id"]
                rows.append(
                    {
                        **row,
                        "activity_id": f"leadnote:{note['id']}:{contact_id}",
                        "contact_id": contact_id,
                        "crm_type": f"lead_note:{note.get('note_type')}:{lead_id}",
                    }
                )
        return rows


def _linked_contacts(lead: dict[str, Any]) -> list[str]:
    links = ((lead.get("_embedded") or {}).get("contacts")) or []
    return [str(x["id"]) for x in links if isinstance(x, dict) and x.get("id") is not None]


def _naive(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _activities_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = contract.conform(pd.DataFrame(rows), "activities", ACTIVITY_EXTRA)
    if len(frame):
        frame = frame.drop_duplicates(subset=["portal", "activity_id"], keep="last")
    return frame.reset_index(drop=True)


def _own_tasks_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_own_tasks()
    frame = pd.DataFrame(rows, columns=list(OWN_TASK_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.drop_duplicates("task_key", keep="first").reset_index(drop=True)


def extract(
    conn: AmoCrmConnector, cursors: dict[str, str] | None, until: datetime
) -> ExtractResult:
    """Read what changed since `cursors` (None: everything) up to `until`."""
    return Extraction(conn, cursors, until).run()
