"""A full HubSpot extract read through the contacts, so that no long list paces it.

A list's `after` cursor is opaque (a list cannot be split), so the longest list (e-mails: several
pages per contact page) would be one chain of requests longer than the rate budget needs. Instead
only the contacts are listed; as each page of contacts arrives, its associations to each activity
type and to deals are read (v4 batch read, the page's ≤ 100 contacts in one request), and the
records found are read by id (batch read, 100 ids a request, the same properties the list asks
for). Every request goes to the extract's `Fanout` pool as soon as what it needs is read, so the
whole extract is paced by the rate limiter alone.

- A record associated with several contacts is read once and gives one row per contact, as
  listing it did; when a contact on a later page links a record already read, the record is read
  again for that link only (its quarantine and own-task entries count once).
- Records associated with no live contact are not read: a full extract no longer counts
  `activity_without_contact` / `deal_without_contact` (incremental extracts still do), nor
  quarantines such records or returns heatsync's tasks on them as `own_tasks`.
- Which records go in which request depends only on the order of the pages (`fanout.InOrder`),
  never on which answer came first: the rows, quarantine and warnings are those of reading one
  request at a time. The mapping runs on the calling thread, one page of contacts or one batch of
  records at a time, as they arrive.
- Contacts archived or merged away while the list was read are removed from every table at the
  end (the archived list is read beside the walk).
- The walk runs at most `read_workers` pages of contacts ahead of the mapping (`fanout.Gate`: a
  page is given back when the mapping takes it), so the answers waiting for the mapping stay a
  few pages' worth whatever the size of the account, even when the reads outpace the mapping.
  The ids kept for the whole walk (`Seen`) take 8 bytes each when they are plain numbers.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.fanout import Fanout, Gate, InOrder, Stopped, done
from connectors.hubspot import mapping
from connectors.hubspot.client import BatchOutcome
from connectors.hubspot.mapping import ACTIVITY_KIND
from connectors.hubspot.models import HubSpotObject
from connectors.hubspot.settings import (
    ACTIVITY_OBJECTS,
    ACTIVITY_PROPERTIES,
    BATCH_SIZE,
    CONTACTS,
    DEAL_PROPERTIES,
    DEALS,
    LIST_PAGE_SIZE,
    TASK_KEY_PROPERTY,
    TASKS,
)

if TYPE_CHECKING:
    from connectors.hubspot.extract import Row, _Extract

VIA_CONTACTS = (*ACTIVITY_OBJECTS, DEALS)
PROPERTIES: dict[str, tuple[str, ...]] = {**ACTIVITY_PROPERTIES, DEALS: DEAL_PROPERTIES}


@dataclass
class _Batch:
    """One batch read: its records' contacts (in link order), and the ids read for the first
    time (the others are read again for contacts linked after their first read)."""

    object_type: str
    future: Future[BatchOutcome]
    links: dict[str, list[str]]
    first: set[str]


_END = object()


class Seen:
    """Record ids seen so far. Plain numbers end up in a sorted int64 array (8 bytes an id; a
    set of Python ints costs about 70), merged in from a set every `MERGE` ids; others in a set."""

    MERGE = 32_768

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.int64)
        self._recent: set[int] = set()
        self._other: set[str] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent) + len(self._other)

    def first(self, record_ids: Sequence[str]) -> list[str]:
        """The ids not seen before (each once, in order); all of them are seen from now on."""
        keys = [_key(i) for i in record_ids]
        nums = np.fromiter((k if isinstance(k, int) else 0 for k in keys), np.int64, len(keys))
        known = np.zeros(len(keys), dtype=bool)
        if len(self._sorted) and len(keys):
            at = np.minimum(np.searchsorted(self._sorted, nums), len(self._sorted) - 1)
            known = self._sorted[at] == nums
        out = []
        for record_id, key, old in zip(record_ids, keys, known.tolist(), strict=True):
            if isinstance(key, int):
                if old or key in self._recent:
                    continue
                self._recent.add(key)
            elif key in self._other:
                continue
            else:
                self._other.add(key)
            out.append(record_id)
        if len(self._recent) >= self.MERGE:
            recent = np.fromiter(self._recent, np.int64, len(self._recent))
            self._sorted = np.union1d(self._sorted, recent)
            self._recent = set()
        return out


def _key(record_id: str) -> int | str:
    """A record id as kept in a set: an int when it is a plain number (about half the bytes)."""
    plain = (
        record_id.isascii()
        and record_id.isdigit()
        and record_id[0] != "0"
        and len(record_id) <= 18  # fits an int64
    )
    return int(record_id) if plain else record_id


@dataclass
class _Walk:
    """The requests of the walk and the order of its events (run on the pool's threads)."""

    run: _Extract
    fanout: Fanout
    events: queue.Queue[Any] = field(default_factory=queue.Queue)
    pending: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {t: {} for t in VIA_CONTACTS}
    )
    sent: dict[str, Seen] = field(default_factory=lambda: {t: Seen() for t in VIA_CONTACTS})
    walked: Seen = field(default_factory=Seen)  # contacts whose links are asked for

    def __post_init__(self) -> None:
        self.order = InOrder(self.events.put)
        self.ahead = Gate(self.fanout, max(2, self.run.settings.read_workers))

    def failed(self, read: Future[Any]) -> None:
        """A read beside the walk failed: the extract stops with its error."""
        if not read.cancelled() and read.exception() is not None:
            self.events.put(read.exception())

    def walk(self) -> None:
        """List the contacts; per page, its event and one association read per type."""
        client = self.run.client
        props = mapping.contact_properties(self.run.settings.vip_property)
        try:
            page: list[dict[str, Any]] = []
            for record in client.list_objects(CONTACTS, props):
                page.append(record)
                if len(page) == LIST_PAGE_SIZE:
                    self._page(page)
                    page = []
            if page:
                self._page(page)
            self.order.add(done(None), self._end)
        except BaseException as exc:
            self.events.put(exc)

    def _page(self, page: list[dict[str, Any]]) -> None:
        if self.fanout.stopped.is_set():
            raise Stopped("another read of this extract failed")
        self.ahead.take()
        live = []
        for record in page:
            cid = str(record.get("id") or "") if isinstance(record, dict) else ""
            if cid.strip() and not record.get("archived"):
                live.append(cid)
        ids = self.walked.first(live)
        self.order.add(done(page), self.events.put)
        if not ids:
            return
        client = self.run.client
        for object_type in VIA_CONTACTS:
            linked = self.fanout.submit(client.associations, CONTACTS, object_type, ids)
            self.order.add(linked, partial(self._linked, object_type, ids))

    def _linked(
        self, object_type: str, contact_ids: list[str], links: dict[str, list[str]]
    ) -> None:
        pending = self.pending[object_type]
        for contact_id in contact_ids:
            for record_id in links.get(contact_id, ()):
                contacts = pending.setdefault(record_id, [])
                if contact_id not in contacts:
                    contacts.append(contact_id)
                if len(pending) == BATCH_SIZE:
                    self._flush(object_type)
                    pending = self.pending[object_type]

    def _flush(self, object_type: str) -> None:
        links = self.pending[object_type]
        if not links:
            return
        self.pending[object_type] = {}
        first = set(self.sent[object_type].first(list(links)))
        read = self.fanout.submit(
            self.run.client.batch_read, object_type, list(links), PROPERTIES[object_type]
        )
        self.events.put(_Batch(object_type, read, links, first))

    def _end(self, _: None) -> None:
        for object_type in VIA_CONTACTS:
            self._flush(object_type)
        self.events.put(_END)


class FullRead:
    """The rows of a full extract, mapped on the calling thread as the walk's events arrive."""

    def __init__(self, run: _Extract, fanout: Fanout) -> None:
        self.run = run
        self.fanout = fanout
        self.contacts: list[Row] = []
        self.activities: list[Row] = []
        self.deals: list[Row] = []
        self.own_tasks: list[Row] = []
        self.mapped: set[int | str] = set()  # contacts that mapped to a row (`_key`)
        self.merged: set[str] = set()
        self._stages: mapping.Stages | None = None

    def read(self) -> set[str]:
        """Read and map everything; the removed contact ids (archived and merged away)."""
        client = self.run.client
        archived = self.fanout.stream(client.list_objects, CONTACTS, [], True)
        walk = self.walk = _Walk(self.run, self.fanout)
        archived.add_done_callback(walk.failed)
        self.fanout.submit(walk.walk)
        while True:
            event = walk.events.get()
            if event is _END:
                break
            if isinstance(event, BaseException):
                raise event
            if isinstance(event, _Batch):
                self._records(event)
            else:
                walk.ahead.give()
                self._contacts(event)
        return {str(r.get("id")) for r in archived.result()} | self.merged

    def _contacts(self, page: list[dict[str, Any]]) -> None:
        run = self.run
        objs = run.objects(CONTACTS, page)
        self.merged |= mapping.merged_away(objs)
        for obj in objs:
            if obj.archived:
                continue
            try:
                row, acts = mapping.contact(
                    obj, run.portal, run.settings.vip_property, run.warnings
                )
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                run._quarantine(CONTACTS, obj, exc)
                continue
            self.contacts.append(row)
            self.activities.extend(acts)
            self.mapped.add(_key(obj.id))

    def _records(self, batch: _Batch) -> None:
        run = self.run
        object_type = batch.object_type
        outcome = batch.future.result()
        position = {record_id: i for i, record_id in enumerate(batch.links)}
        raws = sorted(outcome.results, key=lambda r: position.get(str(r.get("id")), len(position)))
        mapper = self._mapper(object_type)
        for raw in raws:
            first = str(raw.get("id")) in batch.first
            if first:
                objs = run.objects(object_type, [raw])
            else:  # read again for later contacts: its quarantine counted at the first read
                objs = [o for o in (self._valid(raw),) if o is not None]
            for obj in objs:
                if first and object_type == TASKS and obj.prop(TASK_KEY_PROPERTY):
                    self.own_tasks.append(mapping.own_task(obj))
                pairs = run._mapped(object_type, [obj], mapper) if first else _quietly(obj, mapper)
                for _, row in pairs:
                    self._emit(object_type, obj.id, row, batch.links.get(obj.id, []))

    def _emit(self, object_type: str, record_id: str, row: Row, contact_ids: list[str]) -> None:
        portal = self.run.portal
        for contact_id in contact_ids:
            if _key(contact_id) not in self.mapped:
                continue
            if object_type == DEALS:
                self.deals.append({**row, "contact_id": contact_id, "portal": portal})
            else:
                kind = ACTIVITY_KIND[object_type]
                self.activities.append(
                    {
                        **row,
                        "activity_id": f"{kind}:{record_id}:{contact_id}",
                        "contact_id": contact_id,
                        "portal": portal,
                    }
                )

    def _mapper(self, object_type: str) -> Any:
        run = self.run
        if object_type == DEALS:
            if self._stages is None:
                self._stages = mapping.stages(run.client.pipelines())
            stages, currency = self._stages, run.connector.portal_info().currency
            return lambda o: mapping.deal(o, stages, currency)
        note_tags = run.settings.note_tags
        return lambda o: mapping.activity(object_type, o, note_tags)

    @staticmethod
    def _valid(raw: dict[str, Any]) -> HubSpotObject | None:
        try:
            obj = HubSpotObject.model_validate(raw)
        except ValueError:
            return None
        return obj if obj.id.strip() else None


def _quietly(obj: HubSpotObject, mapper: Any) -> Sequence[tuple[HubSpotObject, Row]]:
    """(record, row) of a record read again: a failure was quarantined at its first read."""
    try:
        row = mapper(obj)
    except ValueError:
        return []
    return [] if row is None else [(obj, row)]
