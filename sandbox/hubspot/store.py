"""The sandbox portal's state in HubSpot's shapes: records, associations, validation, persistence.

Objects (contacts, deals, calls, emails, meetings, notes, tasks, companies) carry string-valued
`properties` as HubSpot's CRM v3 objects API returns them, typed associations are kept in both
directions (v4 style), and property definitions follow the properties API. The state saves to and
loads from one JSON file (`sandbox.persist`).
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from sandbox.hubspot import schema
from sandbox.hubspot.values import invalid, iso_ms, normalize_value
from sandbox.persist import JsonFileState

FORMAT = "heatsync-sandbox-hubspot/1"


# ---------------------------------------------------------------------------- records


class Record:
    """One CRM object. `props` holds only set values (all strings).

    Search sees `indexed` (a snapshot) rather than `props`: with a search lag, snapshots wait in
    `pending` as (visible_at_ms, props) until their time comes, like HubSpot's eventually
    consistent search index.
    """

    __slots__ = (
        "archived",
        "archived_at",
        "created_at",
        "id",
        "indexed",
        "parsed",
        "pending",
        "props",
        "updated_at",
    )

    def __init__(
        self,
        id_: int,
        props: dict[str, str],
        created_at: str,
        updated_at: str,
        archived: bool = False,
        archived_at: str | None = None,
    ) -> None:
        self.id = id_
        self.props = props
        self.created_at = created_at
        self.updated_at = updated_at
        self.archived = archived
        self.archived_at = archived_at
        self.indexed: dict[str, str] | None = props
        self.pending: list[tuple[int, dict[str, str]]] = []
        self.parsed: dict[str, tuple[str | None, Any]] = {}

    def search_view(self, now: int) -> dict[str, str] | None:
        """The properties search sees at `now` (ms), or None when not yet indexed."""
        if self.pending and self.pending[0][0] <= now:
            while self.pending and self.pending[0][0] <= now:
                _, self.indexed = self.pending.pop(0)
            self.parsed = {}
        return self.indexed

    def to_api(
        self,
        names: Iterable[str],
        *,
        with_archived_at: bool = False,
    ) -> dict[str, Any]:
        props = self.props
        out: dict[str, Any] = {
            "id": str(self.id),
            "properties": {n: props.get(n) for n in names},
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        }
        if self.archived and (with_archived_at or self.archived_at):
            out["archivedAt"] = self.archived_at
        return out


# ---------------------------------------------------------------------------- state


class HubSpotState(JsonFileState):
    """The whole emulated portal. Mutate only under `lock` while a server runs."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        stamp = "2020-01-01T00:00:00.000Z"
        self.account: dict[str, Any] = {
            "portalId": 24681357,
            "accountType": "STANDARD",
            "timeZone": "Europe/Riga",
            "companyCurrency": "EUR",
            "additionalCurrencies": [],
            "uiDomain": "app-eu1.hubspot.com",
            "dataHostingLocation": "eu1",
        }
        self.owners: list[dict[str, Any]] = []
        self.pipelines: dict[str, list[dict[str, Any]]] = schema.default_pipelines(stamp)
        self.properties: dict[str, dict[str, dict[str, Any]]] = schema.default_properties([])
        self.groups: dict[str, dict[str, dict[str, Any]]] = schema.default_groups()
        self.objects: dict[str, dict[int, Record]] = {t: {} for t in schema.OBJECT_TYPES}
        self.order: dict[str, list[int]] = {t: [] for t in schema.OBJECT_TYPES}
        # (from type, to type) -> from id -> to id -> [(category, type id)]
        self.assoc: dict[tuple[str, str], dict[int, dict[int, list[tuple[str, int]]]]] = {}
        self.email_index: dict[str, int] = {}
        self.merged_into: dict[int, int] = {}  # contact id merged away -> survivor id
        # type -> id -> property -> versions, newest first (sandbox.hubspot.history)
        self.history: dict[str, dict[int, dict[str, list[dict[str, Any]]]]] = {}
        self.next_id = 1
        self.meta: dict[str, Any] = {}
        self.version = 0  # bumped on every mutation (persistence watches it)

    # ------------------------------------------------------------------ owners
    def set_owners(self, owners: list[dict[str, str]], stamp: str) -> None:
        self.owners = [
            {
                "id": o["id"],
                "email": o["email"],
                "type": "PERSON",
                "firstName": o["first_name"],
                "lastName": o["last_name"],
                "userId": int(o["id"]) % 10_000_000 + 1_000_000,
                "userIdIncludingInactive": int(o["id"]) % 10_000_000 + 1_000_000,
                "createdAt": stamp,
                "updatedAt": stamp,
                "archived": False,
                "teams": [],
            }
            for o in owners
        ]
        opts = [
            schema.option(o["id"], f"{o['firstName']} {o['lastName']}", i)
            for i, o in enumerate(self.owners)
        ]
        for defs in self.properties.values():
            if "hubspot_owner_id" in defs:
                defs["hubspot_owner_id"]["options"] = opts

    # ------------------------------------------------------------------ objects
    def get(self, obj_type: str, obj_id: int | str) -> Record | None:
        try:
            key = int(obj_id)
        except (TypeError, ValueError):
            return None
        return self.objects[obj_type].get(key)

    def add(
        self,
        obj_type: str,
        props: dict[str, str | None],
        created_ms: int,
        updated_ms: int | None = None,
        obj_id: int | None = None,
    ) -> Record:
        """Insert an object as is (no validation); fills id, create and modified dates."""
        if obj_id is None:
            obj_id = self.next_id
        self.next_id = max(self.next_id, obj_id + 1)
        updated_ms = created_ms if updated_ms is None else updated_ms
        kept: dict[str, str] = {k: v for k, v in props.items() if v is not None}
        kept["hs_object_id"] = str(obj_id)
        create_prop = schema.CREATE_DATE_PROPERTY[obj_type]
        kept.setdefault(create_prop, iso_ms(created_ms))
        kept["hs_lastmodifieddate"] = iso_ms(updated_ms)
        if obj_type == "contacts":
            kept["lastmodifieddate"] = kept["hs_lastmodifieddate"]
        rec = Record(obj_id, kept, iso_ms(created_ms), iso_ms(updated_ms))
        self.objects[obj_type][obj_id] = rec
        order = self.order[obj_type]
        if order and order[-1] > obj_id:
            bisect.insort(order, obj_id)
        else:
            order.append(obj_id)
        if obj_type == "contacts" and kept.get("email"):
            self.email_index[kept["email"].lower()] = obj_id
        self.version += 1
        return rec

    def touch(self, obj_type: str, rec: Record, now: int, lag_ms: int = 0) -> None:
        """Record a change made at `now`: bump modified dates, schedule the search re-index."""
        stamp = iso_ms(now)
        rec.updated_at = stamp
        rec.props["hs_lastmodifieddate"] = stamp
        if obj_type == "contacts":
            rec.props["lastmodifieddate"] = stamp
        self.reindex(rec, now, lag_ms)
        self.version += 1

    def reindex(self, rec: Record, now: int, lag_ms: int = 0) -> None:
        if lag_ms <= 0:
            rec.pending.clear()
            rec.indexed = rec.props
            rec.parsed = {}
        else:
            rec.pending.append((now + lag_ms, dict(rec.props)))

    def set_props(self, obj_type: str, rec: Record, values: dict[str, str | None]) -> bool:
        """Apply validated values; returns whether anything changed."""
        changed = False
        for name, value in values.items():
            old = rec.props.get(name)
            if value == old:
                continue
            changed = True
            if name == "email" and obj_type == "contacts":
                if old:
                    self.email_index.pop(old.lower(), None)
                if value:
                    self.email_index[value.lower()] = rec.id
            if value is None:
                rec.props.pop(name, None)
            else:
                rec.props[name] = value
        return changed

    def archive(self, obj_type: str, rec: Record, now: int, lag_ms: int = 0) -> None:
        """Archive without touching modified dates (as HubSpot does)."""
        rec.archived = True
        rec.archived_at = iso_ms(now)
        if obj_type == "contacts" and rec.props.get("email"):
            if self.email_index.get(rec.props["email"].lower()) == rec.id:
                del self.email_index[rec.props["email"].lower()]
        self.version += 1

    def iter_live(self, obj_type: str) -> Iterator[Record]:
        objs = self.objects[obj_type]
        for obj_id in self.order[obj_type]:
            rec = objs[obj_id]
            if not rec.archived:
                yield rec

    # ------------------------------------------------------------------ associations
    def associate(
        self,
        from_type: str,
        from_id: int,
        to_type: str,
        to_id: int,
        type_id: int,
        category: str = "HUBSPOT_DEFINED",
    ) -> None:
        """Associate both directions (the inverse type is derived for HubSpot-defined types)."""
        self._link(from_type, from_id, to_type, to_id, category, type_id)
        inverse = schema.INVERSE_TYPE.get(type_id) if category == "HUBSPOT_DEFINED" else type_id
        if inverse is not None:
            self._link(to_type, to_id, from_type, from_id, category, inverse)
        self.version += 1

    def _link(self, ft: str, fid: int, tt: str, tid: int, cat: str, type_id: int) -> None:
        types = self.assoc.setdefault((ft, tt), {}).setdefault(fid, {}).setdefault(tid, [])
        if (cat, type_id) not in types:
            types.append((cat, type_id))

    def unassociate(self, from_type: str, from_id: int, to_type: str, to_id: int) -> bool:
        found = False
        for ft, fid, tt, tid in (
            (from_type, from_id, to_type, to_id),
            (to_type, to_id, from_type, from_id),
        ):
            links = self.assoc.get((ft, tt), {}).get(fid)
            if links and tid in links:
                del links[tid]
                found = True
        if found:
            self.version += 1
        return found

    def associations(
        self, from_type: str, from_id: int, to_type: str
    ) -> dict[int, list[tuple[str, int]]]:
        """Live associations of one object to a type: to id -> [(category, type id)]."""
        links = self.assoc.get((from_type, to_type), {}).get(from_id, {})
        objs = self.objects[to_type]
        return {
            tid: types
            for tid, types in sorted(links.items())
            if tid in objs and not objs[tid].archived
        }

    # ------------------------------------------------------------------ properties
    def validate(
        self,
        obj_type: str,
        values: dict[str, Any],
        *,
        allow_read_only: bool = False,
    ) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
        """Validate client-sent property values; returns (normalized values, errors)."""
        defs = self.properties[obj_type]
        out: dict[str, str | None] = {}
        errors: list[dict[str, Any]] = []
        for name, raw in values.items():
            definition = defs.get(name)
            if definition is None or definition.get("archived"):
                errors.append(
                    invalid(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if definition["modificationMetadata"]["readOnlyValue"] and not allow_read_only:
                errors.append(
                    invalid(
                        name,
                        "READ_ONLY_VALUE",
                        f"{name} is a read only property; its value cannot be set.",
                    )
                )
                continue
            value, error = normalize_value(definition, raw)
            if error:
                errors.append(error)
            else:
                out[name] = value
        return out, errors

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        """The state as JSON-ready data. It shares nested dicts with this state (it is meant to
        be serialized at once, under `lock`); `from_json` copies what it is given."""
        objects = {
            t: [
                [r.id, r.created_at, r.updated_at, r.archived, r.archived_at, r.props]
                for r in (self.objects[t][i] for i in self.order[t])
            ]
            for t in schema.OBJECT_TYPES
        }
        assoc = [
            [ft, fid, tt, tid, [list(x) for x in types]]
            for (ft, tt), by_from in self.assoc.items()
            for fid, links in by_from.items()
            for tid, types in links.items()
        ]
        return {
            "format": FORMAT,
            "account": self.account,
            "owners": self.owners,
            "pipelines": self.pipelines,
            "properties": self.properties,
            "groups": self.groups,
            "merged_into": {str(k): v for k, v in self.merged_into.items()},
            "next_id": self.next_id,
            "meta": self.meta,
            "objects": objects,
            "associations": assoc,
            "history": [
                [t, rid, props] for t, by_id in self.history.items() for rid, props in by_id.items()
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubSpotState:
        """A state from `to_json` data (or a parsed state file). The result shares nothing with
        `data`, so `from_json(state.to_json())` is an independent copy."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a sandbox HubSpot state file (format {data.get('format')!r})")
        state = cls()
        state.account = copy.deepcopy(data["account"])
        state.owners = copy.deepcopy(data["owners"])
        state.pipelines = copy.deepcopy(data["pipelines"])
        state.properties = copy.deepcopy(data["properties"])
        state.groups = copy.deepcopy(data["groups"])
        state.merged_into = {int(k): int(v) for k, v in data["merged_into"].items()}
        state.meta = copy.deepcopy(data["meta"])
        for obj_type, rows in data["objects"].items():
            objs = state.objects.setdefault(obj_type, {})
            for obj_id, created, updated, archived, archived_at, props in rows:
                # values are strings: a shallow copy of each property dict is a full copy
                rec = Record(obj_id, dict(props), created, updated, archived, archived_at)
                objs[obj_id] = rec
                if obj_type == "contacts" and not archived and props.get("email"):
                    state.email_index[props["email"].lower()] = obj_id
            state.order[obj_type] = sorted(objs)
        for ft, fid, tt, tid, types in data["associations"]:
            for cat, type_id in types:
                state._link(ft, fid, tt, tid, cat, type_id)
        for obj_type, rid, props in data.get("history", []):
            state.history.setdefault(obj_type, {})[int(rid)] = copy.deepcopy(props)
        state.next_id = data["next_id"]
        state.version = 0
        return state

    def copy(self) -> HubSpotState:
        """An independent deep copy (taken under `lock`); search snapshots start up to date."""
        with self.lock:
            return HubSpotState.from_json(self.to_json())
