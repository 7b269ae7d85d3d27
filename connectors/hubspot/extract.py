"""`HubSpotConnector.extract`: read what changed since the cursors into canonical tables.

No cursors (a full extract): connectors.hubspot.full_read lists the contacts and reads their
activities and deals through them (association and batch reads, no list chain longer than the
contacts'). Cursors: per object type, search windows [cursor - overlap_s, until - search_lag_s]
(a type without a cursor is listed). Records are mapped one by one (connectors.hubspot.mapping);
one that cannot be mapped goes to the quarantine frame with a reason and is counted, never
crashing the run and never silently dropped. Non-fatal oddities (an unparseable free-text
birthday; in an incremental extract, an activity or deal without a contact) are counted in
`ExtractResult.warnings`. Archived contacts (listed with archived=true on every extract) and
merged-away ids are returned in `removed_contact_ids` and never emitted.

Reads run concurrently on `settings.read_workers` threads (`connectors.fanout`). Incremental: the
records of each object type on a thread of their own (a search walks its pages in order), the
archived contacts beside them, and the associations of each type, in chunks of 100 ids, as soon
as that type and the contacts are read. The mapping runs on the calling thread, and the rows,
warnings and quarantine are those of reading one request at a time, in the same order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
from pydantic import ValidationError

from connectors.base import ExtractResult
from connectors.fanout import Fanout
from connectors.http import log
from connectors.hubspot import mapping
from connectors.hubspot.full_read import FullRead
from connectors.hubspot.mapping import ACTIVITY_KIND
from connectors.hubspot.models import HubSpotObject
from connectors.hubspot.settings import (
    ACTIVITY_OBJECTS,
    ACTIVITY_PROPERTIES,
    CONTACTS,
    CURSOR_OBJECTS,
    DEAL_PROPERTIES,
    DEALS,
    TASK_KEY_PROPERTY,
    TASKS,
)
from connectors.hubspot.values import parse_birthday, parse_num, parse_ts
from connectors.sink import TableSink, spill_folder

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector

# The value parsers live in connectors.hubspot.values; importing them from here keeps working.
__all__ = ["extract", "parse_birthday", "parse_num", "parse_ts"]

Row = dict[str, Any]


def extract(
    connector: HubSpotConnector, cursors: dict[str, str] | None, until: datetime
) -> ExtractResult:
    """Read what changed since `cursors` (None: everything) up to `until`; the new cursors."""
    run = _Extract(connector, cursors, parse_ts(until) or datetime.now(UTC))
    # one request alone first: a refused token or a server out of reach fails there, not on
    # every thread at once (the deals need the currency anyway)
    connector.portal_info()
    with Fanout(connector.settings.read_workers, f"heatsync-{run.portal}") as fanout:
        if run.full:
            return run.full_result(fanout)
        run.start(fanout)
        contacts = run.contacts()
        own_tasks: list[Row] = []
        rows: dict[str, Callable[[], list[Row]]] = {}
        for object_type in run.as_read([*ACTIVITY_OBJECTS, DEALS]):
            rows[object_type] = (
                run.deals(contacts)
                if object_type == DEALS
                else run.activities(object_type, contacts, own_tasks)
            )
        activities = list(contacts.rollups)
        for object_type in ACTIVITY_OBJECTS:
            activities.extend(rows[object_type]())
        return run.result(contacts, activities, rows[DEALS](), own_tasks)


@dataclass
class _Contacts:
    rows: list[Row]
    rollups: list[Row]
    removed: set[str]  # archived and merged-away ids


class _Extract:
    """One extract: the reads, the mapping of each object family, warnings and quarantine."""

    def __init__(
        self, connector: HubSpotConnector, cursors: dict[str, str] | None, until: datetime
    ) -> None:
        self.connector = connector
        self.client = connector.client
        self.settings = connector.settings
        self.portal = self.settings.portal
        self.close = until - timedelta(seconds=self.settings.search_lag_s)
        self.cursors = dict(cursors or {})
        self.full = not self.cursors
        self.warnings: Counter[str] = Counter()
        self.quarantined: dict[str, list[Row]] = {CONTACTS: []}  # per type, mapped out of order
        self.fanout: Fanout | None = None
        self.reads: dict[str, Future[tuple[list[Row], bool]]] = {}
        self.archived: Future[list[Row]] | None = None

    # -- reading -----------------------------------------------------------------------------
    def fetch(self, object_type: str, properties: Iterable[str]) -> tuple[list[Row], bool]:
        """The records of one type changed since its cursor, and whether they were read in full."""
        props = list(properties)
        since = parse_ts(self.cursors.get(object_type))
        collect = self.fanout.collect if self.fanout is not None else list
        if since is None:
            return collect(self.client.list_objects(object_type, props)), True
        start = since - timedelta(seconds=self.settings.overlap_s)
        return collect(self.client.search_modified(object_type, start, self.close, props)), False

    def start(self, fanout: Fanout) -> None:
        """Start every read that needs nothing read before it: one thread per object type (its
        pages follow each other's cursors), the archived contacts beside them."""
        self.fanout = fanout
        reads: list[tuple[str, Iterable[str]]] = [
            (CONTACTS, mapping.contact_properties(self.settings.vip_property)),
            *((t, ACTIVITY_PROPERTIES[t]) for t in ACTIVITY_OBJECTS),
            (DEALS, DEAL_PROPERTIES),
        ]
        for object_type, props in reads:
            self.reads[object_type] = fanout.submit(self.fetch, object_type, props)
        self.archived = fanout.stream(self.client.list_objects, CONTACTS, [], True)

    def as_read(self, object_types: list[str]) -> Iterator[str]:
        """The types in the order their records arrive (as given for types not started)."""
        started = {self.reads[t]: t for t in object_types if t in self.reads}
        yield from (t for t in object_types if t not in self.reads)
        for future in as_completed(started):
            yield started[future]

    def read(self, object_type: str, properties: Iterable[str]) -> tuple[list[Row], bool]:
        started = self.reads.pop(object_type, None)
        return started.result() if started is not None else self.fetch(object_type, properties)

    def objects(self, object_type: str, raws: list[Row]) -> list[HubSpotObject]:
        out = []
        for raw in raws:
            try:
                obj = HubSpotObject.model_validate(raw)
                if not obj.id.strip():
                    raise ValueError("missing id")
                out.append(obj)
            except (ValidationError, ValueError) as exc:
                self._quarantine(object_type, raw, exc)
        return out

    def links(self, object_type: str, object_ids: list[str]) -> Callable[[], dict[str, list[str]]]:
        """object id -> associated contact ids; the requests start now, the function returned
        waits for them."""
        if not object_ids:
            return dict
        return self.client.associations_later(object_type, CONTACTS, object_ids, self.fanout)

    # -- per object family -------------------------------------------------------------------
    def contacts(self) -> _Contacts:
        raws, _ = self.read(CONTACTS, mapping.contact_properties(self.settings.vip_property))
        objs = self.objects(CONTACTS, raws)
        archived = (
            self.archived.result()
            if self.archived is not None
            else self.client.list_objects(CONTACTS, [], archived=True)
        )
        removed = {str(r.get("id")) for r in archived} | mapping.merged_away(objs)
        rows: list[Row] = []
        rollups: list[Row] = []
        for obj in objs:
            if obj.id in removed or obj.archived:
                continue
            try:
                row, acts = mapping.contact(
                    obj, self.portal, self.settings.vip_property, self.warnings
                )
            except (ValidationError, ValueError) as exc:
                self._quarantine(CONTACTS, obj, exc)
                continue
            rows.append(row)
            rollups.extend(acts)
        return _Contacts(rows, rollups, removed)

    def activities(
        self, object_type: str, contacts: _Contacts, own_tasks: list[Row]
    ) -> Callable[[], list[Row]]:
        """The rows of one activity type, one per (engagement, live contact), once the function
        returned is called (its links are read meanwhile); heatsync's own tasks are added to
        `own_tasks`."""
        raws, _ = self.read(object_type, ACTIVITY_PROPERTIES[object_type])
        objs = self.objects(object_type, raws)
        if object_type == TASKS:
            own_tasks.extend(mapping.own_task(obj) for obj in objs if obj.prop(TASK_KEY_PROPERTY))
        note_tags = self.settings.note_tags
        mapped = self._mapped(
            object_type, objs, lambda o: mapping.activity(object_type, o, note_tags)
        )
        kind = ACTIVITY_KIND[object_type]
        links = self.links(object_type, [o.id for o, _ in mapped])
        return lambda: [
            {
                **row,
                "activity_id": f"{kind}:{obj.id}:{contact_id}",
                "contact_id": contact_id,
                "portal": self.portal,
            }
            for obj, row, contact_id in self._per_contact(
                mapped, links(), contacts, "activity_without_contact"
            )
        ]

    def deals(self, contacts: _Contacts) -> Callable[[], list[Row]]:
        """The rows of the deals, one per (deal, live contact), once the function returned is
        called."""
        raws, _ = self.read(DEALS, DEAL_PROPERTIES)
        objs = self.objects(DEALS, raws)
        if not objs:
            return list
        stages = mapping.stages(self.client.pipelines())
        currency = self.connector.portal_info().currency
        mapped = self._mapped(DEALS, objs, lambda o: mapping.deal(o, stages, currency))
        links = self.links(DEALS, [o.id for o, _ in mapped])
        return lambda: [
            {**row, "contact_id": contact_id, "portal": self.portal}
            for _, row, contact_id in self._per_contact(
                mapped, links(), contacts, "deal_without_contact"
            )
        ]

    # -- bookkeeping -------------------------------------------------------------------------
    def _mapped(
        self,
        object_type: str,
        objs: list[HubSpotObject],
        mapper: Callable[[HubSpotObject], Row | None],
    ) -> list[tuple[HubSpotObject, Row]]:
        """(record, row) for each record that maps to a row; the ones that fail are quarantined."""
        out = []
        for obj in objs:
            try:
                row = mapper(obj)
            except (ValidationError, ValueError) as exc:
                self._quarantine(object_type, obj, exc)
                continue
            if row is not None:
                out.append((obj, row))
        return out

    def _per_contact(
        self,
        mapped: list[tuple[HubSpotObject, Row]],
        links: dict[str, list[str]],
        contacts: _Contacts,
        unlinked_warning: str,
    ) -> Iterator[tuple[HubSpotObject, Row, str]]:
        """(record, row, contact id) for each live contact of each record; a record with no
        contact at all is counted under `unlinked_warning`."""
        for obj, row in mapped:
            if not links.get(obj.id):
                self.warnings[unlinked_warning] += 1
            for contact_id in links.get(obj.id, []):
                if contact_id not in contacts.removed:
                    yield obj, row, contact_id

    def _quarantine(self, object_type: str, record: Any, exc: Exception) -> None:
        row = mapping.quarantine_row(self.portal, object_type, record, exc)
        self.quarantined.setdefault(object_type, []).append(row)

    @property
    def quarantine(self) -> list[Row]:
        order = [CONTACTS, *ACTIVITY_OBJECTS, DEALS]
        known = [t for t in order if t in self.quarantined]
        rest = [t for t in self.quarantined if t not in order]
        return [row for t in (*known, *rest) for row in self.quarantined[t]]

    def full_result(self, fanout: Fanout) -> ExtractResult:
        """A full extract, read through the contacts (connectors.hubspot.full_read). With a
        scratch folder (`connectors.sink.spill_into`, the extract step gives one) the rows go to
        sinks that spill them in chunks as the walk maps them, instead of lists held whole."""
        self.fanout = fanout
        read = FullRead(self, fanout)
        folder = spill_folder()
        if folder is None:
            removed = read.read()
            contacts = _Contacts(read.contacts, [], removed)
            return self.result(contacts, read.activities, read.deals, read.own_tasks)
        sinks = (
            TableSink("contacts", folder / "contacts", extra=mapping.ROLLUP_COUNT_COLUMNS),
            TableSink("activities", folder / "activities", extra=mapping.ACTIVITY_EXTRA),
            TableSink("deals", folder / "deals", dedupe=False),
        )
        # FullRead only appends and extends its row lists, which a sink offers too
        read.contacts, read.activities, read.deals = (cast(list[Row], s) for s in sinks)
        removed = read.read()
        for sink in sinks:
            sink.drop_contacts(removed)
            sink.close()
        return self.result(_Contacts([], [], removed), [], [], read.own_tasks, sinks)

    def result(
        self,
        contacts: _Contacts,
        activities: list[Row],
        deals: list[Row],
        own_tasks: list[Row],
        sinks: tuple[TableSink, TableSink, TableSink] | None = None,
    ) -> ExtractResult:
        new_cursor = self.close.isoformat()
        if self.quarantine:
            self.warnings["quarantined"] += len(self.quarantine)
            log.warning("%s: quarantined %d record(s)", self.portal, len(self.quarantine))
        tables: tuple[pd.DataFrame | TableSink, ...] = sinks or (
            _without(mapping.contacts_frame(contacts.rows), contacts.removed),
            _without(mapping.activities_frame(activities), contacts.removed),
            _without(mapping.deals_frame(deals), contacts.removed),
        )
        return ExtractResult(
            contacts=tables[0],
            activities=tables[1],
            deals=tables[2],
            quarantine=mapping.quarantine_frame(self.quarantine),
            removed_contact_ids=sorted(contacts.removed, key=lambda v: (len(v), v)),
            cursors={t: new_cursor for t in CURSOR_OBJECTS},
            full=self.full,
            warnings=dict(self.warnings),
            own_tasks=mapping.own_tasks_frame(own_tasks),
        )


def _without(frame: pd.DataFrame, removed: set[str]) -> pd.DataFrame:
    """The rows of contacts not removed (a full extract maps each page before the archived list
    and the later pages say which contacts are gone)."""
    if frame.empty or not removed:
        return frame
    return frame[~frame["contact_id"].isin(removed)].reset_index(drop=True)
