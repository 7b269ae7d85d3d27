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

The mapping lives in one module per object, each with the endpoints it reads:
`connectors.amocrm.contacts` (contacts and the fields heatsync reads), `connectors.amocrm.deals`
(leads), `connectors.amocrm.activities` (notes, chat events, tasks), with the value parsers in
`connectors.amocrm.parsing`. This module holds the run: the windows, the paging without the API
filtering add-on, the quarantine, the order of the reads and the result.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from connectors.amocrm.activities import (
    ACTIVITY_EXTRA,
    MEETING_OUTCOME,
    NOTE_TAG,
    chat_activity,
    lead_note_activities,
    note_activity,
    own_tasks_frame,
    task_activity,
)
from connectors.amocrm.contacts import FieldMap, contact_row, option_code
from connectors.amocrm.deals import DEAL_EXTRA, deal_rows
from connectors.amocrm.models import CustomField
from connectors.amocrm.pages import PageQueue
from connectors.amocrm.parsing import (
    MIDNIGHT_TOLERANCE_S,
    TEXT_MAX,
    Bad,
    calendar_date,
    clip,
    number,
    opt_ts,
    ts,
)
from connectors.amocrm.settings import (
    CHAT_EVENT_TYPES,
    CURSOR_OBJECTS,
    NOTE_TYPES,
    REMOVAL_EVENT_TYPES,
)
from connectors.base import QUARANTINE_COLUMNS, ExtractResult
from connectors.fanout import Fanout, PagedRead, read_pages
from connectors.http import log, redact
from connectors.sink import TableSink, spill_folder

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector

__all__ = [
    "ACTIVITY_EXTRA",
    "MEETING_OUTCOME",
    "MIDNIGHT_TOLERANCE_S",
    "NOTE_TAG",
    "TEXT_MAX",
    "Bad",
    "Extraction",
    "FieldMap",
    "calendar_date",
    "clip",
    "extract",
    "number",
    "opt_ts",
    "option_code",
    "ts",
]


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
        self.fanout: Fanout | None = None
        self.queue: PageQueue | None = None  # the lists started by `start`
        self.folder = spill_folder()  # where the tables' chunks go (None: in memory)
        self.fields: Future[list[CustomField]] | None = None
        flag = conn.settings.api_filter
        self.filtering = (
            flag if flag is not None else conn.account().api_filter_enabled is not False
        )
        if not self.filtering:
            self.warnings["api_filter_off"] += 1

    # -- helpers -----------------------------------------------------------------------------
    def paged(
        self, path: str, key: str, params: list[tuple[str, Any]], limit: int | None = None
    ) -> PagedRead:
        return PagedRead(lambda page: self.client.page(path, key, params, page, limit=limit))

    def pages(self, name: str, read: PagedRead) -> Iterator[list[dict[str, Any]]]:
        """The pages of a list started by `start` under `name`, else of `read`, read now."""
        if self.queue is not None and name in self.queue:
            yield from self.queue.pages(name)
            return
        page = 1
        while True:
            items, more = read.fetch(page)
            yield items
            if not items or not more or (read.last is not None and read.last(items)):
                return
            page += 1

    def items(self, name: str, read: PagedRead) -> Iterator[dict[str, Any]]:
        for page in self.pages(name, read):
            yield from page

    def listed_many(
        self, path: str, key: str, queries: list[list[tuple[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The items of several lists of one endpoint (one per query), read at once, in order."""
        reads = [self.paged(path, key, query) for query in queries]
        if reads:
            if self.fanout is None:
                with Fanout(1) as fanout:
                    read_pages(fanout, reads, 1)
            else:
                read_pages(self.fanout, reads, self.settings.read_workers)
        return [item for read in reads for item in read.items]

    def _bounds(self, name: str) -> tuple[int | None, int]:
        since = self.cursors.get(name)
        low = None
        if since:
            start = ts(since, f"cursor {name}") - timedelta(seconds=self.settings.overlap_s)
            low = int(start.timestamp())
        return low, int(self.until.timestamp())

    def updated_read(
        self, path: str, key: str, name: str, extra: list[tuple[str, Any]]
    ) -> PagedRead:
        if self.filtering:
            return self.paged(path, key, [*extra, *self.window(name, "updated_at")])
        low, _ = self._bounds(name)
        read = self.paged(path, key, [*extra, ("order[updated_at]", "desc")])

        def older(items: list[dict[str, Any]]) -> bool:
            stamps = (_stamp(item) for item in items)
            return low is not None and any(s is not None and s < low for s in stamps)

        read.last = older
        return read

    def updated(
        self, path: str, key: str, name: str, extra: list[tuple[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """Contacts or leads updated in the window: by filter[updated_at], or, without the API
        filtering add-on, newest first (`order[updated_at]=desc`) until older than the window."""
        items = self.items(name, self.updated_read(path, key, name, extra))
        if self.filtering:
            yield from items
            return
        low, high = self._bounds(name)
        for item in items:
            stamp = _stamp(item)
            if stamp is None:
                yield item  # mapped (and quarantined) like any other record
                continue
            if stamp > high:
                continue  # changed after `until`: the next run reads it
            if low is not None and stamp < low:
                return  # newest first: everything after this is older
            yield item

    def start(self, fanout: Fanout) -> None:
        """Start every list of the extract at once; `_run` takes their pages list by list."""
        self.fanout = fanout
        self.fields = fanout.submit(self.client.custom_fields, "contacts")
        self.queue = PageQueue(fanout, self.settings.read_workers)
        for name, read in self.reads().items():
            self.queue.add(name, read)

    def reads(self) -> dict[str, PagedRead]:
        """The lists of an extract, by name, in the order they are mapped."""
        notes = [("filter[note_type][]", t) for t in NOTE_TYPES]
        events = [*(("filter[type][]", t) for t in (*CHAT_EVENT_TYPES, *REMOVAL_EVENT_TYPES))]
        return {
            "contacts": self.updated_read("/contacts", "contacts", "contacts", []),
            "notes": self.paged(
                "/contacts/notes", "notes", [*notes, *self.window("notes", "updated_at")]
            ),
            "events": self.paged(
                "/events",
                "events",
                [*events, *self.window("events", "created_at")],
                limit=self.settings.events_page_size,
            ),
            "tasks": self.paged(
                "/tasks",
                "tasks",
                [("filter[entity_type]", "contacts"), *self.window("tasks", "updated_at")],
            ),
            "leads": self.updated_read("/leads", "leads", "leads", [("with", "contacts")]),
            "lead_notes": self.paged(
                "/leads/notes", "notes", [*notes, *self.window("notes", "updated_at")]
            ),
        }

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
        with Fanout(self.settings.read_workers, f"heatsync-{self.portal}") as fanout:
            self.start(fanout)
            try:
                return self._run()
            finally:
                if self.queue is not None:
                    self.queue.close()

    def sink(self, table: str, **options: Any) -> TableSink:
        folder = None if self.folder is None else self.folder / table
        return TableSink(table, folder, **options)

    def _run(self) -> ExtractResult:
        """Map the lists page by page into the tables' sinks, in the order of reading one list
        after the other: contacts, notes, events (removals and chats), tasks, leads, lead notes.
        The removed contacts are left out of every table once all are known."""
        fields = FieldMap(
            self.fields.result() if self.fields else self.client.custom_fields("contacts"),
            self.conn,
        )
        reads = self.reads()
        contacts = self.sink("contacts")
        activities = self.sink("activities", extra=ACTIVITY_EXTRA)
        deals = self.sink("deals", extra=DEAL_EXTRA, dedupe=False)
        for raw in self.updated("/contacts", "contacts", "contacts", []):
            row = contact_row(self, raw, fields)
            if row is not None:
                contacts.append(row)
        for note in self.items("notes", reads["notes"]):
            act = note_activity(self, note)
            if act is not None:
                activities.append(act)
        for event in self.items("events", reads["events"]):
            if event.get("type") in REMOVAL_EVENT_TYPES and event.get("entity_id") is not None:
                self.removed.add(str(event["entity_id"]))
            elif event.get("type") in CHAT_EVENT_TYPES:
                act = chat_activity(self, event)
                if act is not None:
                    activities.append(act)
        own_tasks: list[dict[str, Any]] = []
        for task in self.items("tasks", reads["tasks"]):
            act = task_activity(self, task, own_tasks)
            if act is not None:
                activities.append(act)
        deals.extend(deal_rows(self))
        activities.extend(lead_note_activities(self))

        for sink in (contacts, activities, deals):
            sink.drop_contacts(self.removed)
            sink.close()
        if self.quarantine:
            self.warnings["quarantined"] += len(self.quarantine)
            log.warning("%s: quarantined %d record(s)", self.portal, len(self.quarantine))
        cursor = self.until.astimezone(UTC).isoformat()
        return ExtractResult(
            contacts=contacts,
            activities=activities,
            deals=deals,
            quarantine=pd.DataFrame(self.quarantine, columns=list(QUARANTINE_COLUMNS)),
            removed_contact_ids=sorted(self.removed, key=lambda v: (len(v), v)),
            cursors={name: cursor for name in CURSOR_OBJECTS},
            full=self.full,
            warnings=dict(self.warnings),
            own_tasks=own_tasks_frame(own_tasks),
        )


def _stamp(item: Any) -> int | None:
    try:
        return int(item.get("updated_at"))
    except (AttributeError, TypeError, ValueError):
        return None


def extract(
    conn: AmoCrmConnector, cursors: dict[str, str] | None, until: datetime
) -> ExtractResult:
    """Read what changed since `cursors` (None: everything) up to `until`."""
    return Extraction(conn, cursors, until).run()
