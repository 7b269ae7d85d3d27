"""amoCRM notes, chat events and tasks -> canonical activity rows (scoring.contract).

- notes on contacts (`GET /api/v4/contacts/notes`): call_in/call_out -> call with direction,
  duration and outcome (call_status); sms_in/sms_out -> sms; common and service_message notes ->
  note, or the canonical type of a leading `[tag]`. The same notes on leads
  (`GET /api/v4/leads/notes`) count for each contact of the lead.
- chat messages from events (`GET /api/v4/events`, incoming/outgoing_chat_message).
- tasks (`GET /api/v4/tasks`): completed meetings (type 2) -> meeting with the outcome of a
  `[meeting <outcome>]` result, open ones scheduled; other completed tasks -> task_completed.
heatsync's own tasks and notes (marked `[hs:…]`) are never activity; its tasks are collected as
`own_tasks`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

from connectors.amocrm.deals import linked_contacts
from connectors.amocrm.markers import key_from_marker, markers_in
from connectors.amocrm.parsing import NOT_AN_OBJECT, Bad, clip, number, ts
from connectors.amocrm.settings import CALL_STATUS_OUTCOMES, MEETING_TASK_TYPE_ID, NOTE_TYPES
from connectors.base import OWN_TASK_COLUMNS, empty_own_tasks
from scoring import contract

if TYPE_CHECKING:
    from connectors.amocrm.extract import Extraction

ACTIVITY_EXTRA = {"crm_id": "str", "crm_type": "str"}
MEETING_OUTCOME = re.compile(r"^\s*\[\s*meeting\s+([a-z_]+)\s*\]", re.I)
NOTE_TAG = re.compile(r"^\s*\[\s*([A-Za-z_]+)(?:\s+(inbound|outbound))?\s*\]\s*(.*)$", re.S | re.I)


def note_activity(
    ex: Extraction, note: dict[str, Any], object_type: str = "notes"
) -> dict[str, Any] | None:
    if not isinstance(note, dict):
        ex.q(object_type, note, NOT_AN_OBJECT)
        return None
    try:
        if note.get("id") in (None, "") or note.get("entity_id") in (None, ""):
            raise Bad("id or entity_id: missing")
        params = note.get("params") if isinstance(note.get("params"), dict) else {}
        assert isinstance(params, dict)
        kind = str(note.get("note_type") or "")
        row: dict[str, Any] = {
            "activity_id": f"note:{note['id']}",
            "contact_id": str(note["entity_id"]),
            "portal": ex.portal,
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
                row["outcome"] = CALL_STATUS_OUTCOMES.get(int(number(status, "call_status") or 0))
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
            if match and match.group(1).lower() in ex.settings.note_tags:
                row["type"] = match.group(1).lower()
                row["direction"] = match.group(2).lower() if match.group(2) else None
                row["text"] = clip(match.group(3))
        return row
    except Bad as exc:
        ex.q(object_type, note, str(exc))
    except (TypeError, ValueError, OverflowError) as exc:
        ex.q(object_type, note, f"unexpected shape: {exc}")
    return None


def chat_activity(ex: Extraction, event: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        ex.q("events", event, NOT_AN_OBJECT)
        return None
    try:
        entity = event.get("entity_type")
        contact = event.get("entity_id") if entity == "contact" else None
        if contact is None:
            contact = event.get("linked_talk_contact_id")
        if contact in (None, ""):
            ex.warnings["chat_without_contact"] += 1
            return None
        inbound = event.get("type") == "incoming_chat_message"
        return {
            "activity_id": f"chat:{event['id']}",
            "contact_id": str(contact),
            "portal": ex.portal,
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
    except Bad as exc:
        ex.q("events", event, str(exc))
    except KeyError as exc:
        ex.q("events", event, f"{exc.args[0]}: missing")
    except (TypeError, ValueError, OverflowError) as exc:
        ex.q("events", event, f"unexpected shape: {exc}")
    return None


def task_activity(
    ex: Extraction, task: dict[str, Any], own: list[dict[str, Any]]
) -> dict[str, Any] | None:
    if not isinstance(task, dict):
        ex.q("tasks", task, NOT_AN_OBJECT)
        return None
    try:
        if task.get("id") in (None, "") or task.get("entity_id") in (None, ""):
            return None  # a task on no contact is nobody's activity
        contact = str(task["entity_id"])
        marks = markers_in(str(task.get("text") or ""))
        if marks:
            for mark in marks:
                key = key_from_marker(mark, ex.account_key, contact)
                if key is not None:
                    created = ts(task.get("created_at"), "created_at")
                    own.append({"task_key": key, "task_id": str(task["id"]), "created_at": created})
            return None  # heatsync's own task: never the contact's activity
        done = bool(task.get("is_completed"))
        result = task.get("result") if isinstance(task.get("result"), dict) else {}
        assert isinstance(result, dict)
        row: dict[str, Any] = {
            "activity_id": f"task:{task['id']}",
            "contact_id": contact,
            "portal": ex.portal,
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
                row["outcome"] = outcome if outcome in contract.MEETING_OUTCOMES else "completed"
            return row
        if not done:
            return None
        row["type"] = "task_completed"
        row["occurred_at"] = ts(task.get("updated_at") or task.get("complete_till"), "updated_at")
        return row
    except Bad as exc:
        ex.q("tasks", task, str(exc))
    except (TypeError, ValueError, OverflowError) as exc:
        ex.q("tasks", task, f"unexpected shape: {exc}")
    return None


def lead_note_activities(ex: Extraction) -> Iterator[dict[str, Any]]:
    """Notes on leads (telephony often logs calls on the lead), one row per linked contact.

    A note's contacts are known once every lead of the window is (and the leads of the notes
    outside it were asked for): the notes' pages wait in the scratch folder meanwhile (in memory
    without one), and are mapped page by page afterwards."""
    read = ex.paged(
        "/leads/notes",
        "notes",
        [*[("filter[note_type][]", t) for t in NOTE_TYPES], *ex.window("notes", "updated_at")],
    )
    leads: set[str] = set()
    with _Parked(ex.folder) as parked:
        for page in ex.pages("lead_notes", read):
            leads.update(str(n.get("entity_id")) for n in page)
            parked.add(page)
        unknown = sorted(leads - set(ex.lead_contacts) - {"None", ""})
        for lead in ex.listed_many(
            "/leads",
            "leads",
            [
                [("with", "contacts"), *(("filter[id][]", i) for i in unknown[part : part + size])]
                for size in [ex.settings.batch_size]
                for part in range(0, len(unknown), size)
            ],
        ):
            ex.lead_contacts[str(lead.get("id"))] = linked_contacts(lead)
        for page in parked.pages():
            for note in page:
                yield from _lead_note_rows(ex, note)


def _lead_note_rows(ex: Extraction, note: dict[str, Any]) -> Iterator[dict[str, Any]]:
    contacts = ex.lead_contacts.get(str(note.get("entity_id")), [])
    if not contacts:
        ex.warnings["lead_note_without_contact"] += 1
        return
    row = note_activity(ex, note, object_type="lead_notes")
    if row is None:
        return
    for contact_id in contacts:
        lead_id = note["entity_id"]
        yield {
            **row,
            "activity_id": f"leadnote:{note['id']}:{contact_id}",
            "contact_id": contact_id,
            "crm_type": f"lead_note:{note.get('note_type')}:{lead_id}",
        }


class _Parked:
    """Pages kept for later: as JSON lines in a file of `folder`, or in memory without one."""

    def __init__(self, folder: Path | None) -> None:
        self.path = None if folder is None else folder / "lead_notes.jsonl"
        self.kept: list[list[Any]] = []
        self.handle: IO[str] | None = None

    def __enter__(self) -> _Parked:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("w+", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()
            assert self.path is not None
            self.path.unlink(missing_ok=True)

    def add(self, page: list[Any]) -> None:
        if self.handle is None:
            self.kept.append(page)
        else:
            self.handle.write(json.dumps(page) + "\n")

    def pages(self) -> Iterator[list[Any]]:
        if self.handle is None:
            yield from self.kept
            return
        self.handle.seek(0)
        for line in self.handle:
            yield json.loads(line)


def own_tasks_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_own_tasks()
    frame = pd.DataFrame(rows, columns=list(OWN_TASK_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.drop_duplicates("task_key", keep="first").reset_index(drop=True)
