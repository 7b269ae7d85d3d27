"""The sandbox portal's state in HubSpot's shapes, its validation rules and its JSON persistence.

Objects (contacts, deals, calls, emails, meetings, notes, tasks, companies) carry string-valued
`properties` as HubSpot's CRM v3 objects API returns them, typed associations are kept in both
directions (v4 style), and property definitions follow the properties API. `render_truth` renders
a neutral `sandbox.portal.Portal` into this state; see sandbox/README.md for the mapping.
"""

from __future__ import annotations

import bisect
import copy
import json
import math
import re
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors.atomic import atomic_write_text
from sandbox.hubspot import schema
from sandbox.portal import Portal

FORMAT = "heatsync-sandbox-hubspot/1"


# ---------------------------------------------------------------------------- time helpers


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: int | float) -> str:
    """Epoch milliseconds -> "2026-05-01T10:11:12.345Z" (HubSpot's datetime rendering)."""
    dt = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_RE = re.compile(r"^-?\d{9,}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_ms(value: str) -> int | None:
    """Epoch ms or an ISO 8601 date/datetime string -> epoch ms (UTC); None when unparseable."""
    value = value.strip()
    if _EPOCH_RE.match(value):
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


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


# ---------------------------------------------------------------------------- validation


def _err(name: str, code: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name}


def normalize_value(definition: dict[str, Any], raw: Any) -> tuple[str | None, dict | None]:
    """Validate one property value against its definition like HubSpot does.

    Returns (stored string or None to clear, error or None). Datetimes are stored as ISO with
    milliseconds and Z, dates as YYYY-MM-DD (they must be midnight UTC), booleans lower-case.
    """
    name = definition["name"]
    if raw is None:
        return None, None
    if isinstance(raw, bool):
        value = "true" if raw else "false"
    elif isinstance(raw, int | float):
        value = repr(raw) if isinstance(raw, float) and not raw.is_integer() else str(int(raw))
    elif isinstance(raw, str):
        value = raw
    else:
        return None, _err(name, "INVALID_PROPERTY_VALUE", f"{raw!r} is not a valid value")
    if value == "":
        return None, None
    type_ = definition["type"]
    if type_ == "number":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return None, _err(name, "INVALID_INTEGER", f"{value} was not a valid number.")
        return value.strip(), None
    if type_ == "bool":
        if value.lower() not in ("true", "false"):
            return None, _err(name, "INVALID_BOOLEAN", f"{value} was not a valid boolean.")
        return value.lower(), None
    if type_ == "datetime":
        ms = parse_ms(value)
        if ms is None:
            return None, _err(name, "INVALID_DATETIME", f"{value} was not a valid date-time.")
        return iso_ms(ms), None
    if type_ == "date":
        if _DATE_RE.match(value.strip()):
            ms = parse_ms(value.strip())
        else:
            ms = parse_ms(value)
        if ms is None:
            return None, _err(name, "INVALID_DATE", f"{value} was not a valid date.")
        if ms % 86_400_000:
            at = iso_ms(ms)[11:23]
            return None, _err(name, "INVALID_DATE", f"{value} is at {at} UTC, not midnight!")
        return iso_ms(ms)[:10], None
    if type_ == "enumeration":
        allowed = {o["value"] for o in definition.get("options", [])}
        if definition["fieldType"] == "checkbox":
            parts = [p for p in value.split(";") if p]
        else:
            parts = [value]
        bad = [p for p in parts if p not in allowed]
        if allowed and bad:
            opts = ", ".join(sorted(allowed))
            return None, _err(
                name,
                "INVALID_OPTION",
                f"{bad[0]} was not one of the allowed options: [{opts}]",
            )
        return value, None
    if len(value) > 65536:
        return None, _err(name, "INVALID_LENGTH", f"{name} is longer than 65536 characters")
    return value, None


def parse_for_search(type_: str, value: str) -> Any:
    """A comparable form of a stored or filter value for a property of `type_`."""
    if type_ == "number":
        try:
            return float(value)
        except ValueError:
            return None
    if type_ in ("datetime", "date"):
        ms = parse_ms(value)
        return None if ms is None else float(ms)
    if type_ == "bool":
        return value.lower()
    if type_ == "enumeration":
        return value
    return value.lower()


# ---------------------------------------------------------------------------- state


class HubSpotState:
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
                    _err(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if definition["modificationMetadata"]["readOnlyValue"] and not allow_read_only:
                errors.append(
                    _err(
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
        state.next_id = data["next_id"]
        state.version = 0
        return state

    def copy(self) -> HubSpotState:
        """An independent deep copy (taken under `lock`); search snapshots start up to date."""
        with self.lock:
            return HubSpotState.from_json(self.to_json())

    def save(self, path: str | Path) -> None:
        """Write the state as JSON atomically (temp file, fsync, rename)."""
        path = Path(path)
        with self.lock:
            text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | Path) -> HubSpotState:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(json.load(fh))


class StatePersister:
    """Saves a state to a file after mutations, at most once per `debounce_s`, and on `close`."""

    def __init__(self, state: HubSpotState, path: str | Path, debounce_s: float = 1.0) -> None:
        self.state = state
        self.path = Path(path)
        self.debounce_s = debounce_s
        self._saved_version = state.version
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-persist", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.debounce_s):
            self.flush()

    def flush(self) -> bool:
        """Save now if anything changed since the last save; returns whether it saved."""
        version = self.state.version
        if version == self._saved_version:
            return False
        self.state.save(self.path)
        self._saved_version = version
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


# ---------------------------------------------------------------------------- rendering

_SOURCES = {
    "organic_search": ("ORGANIC_SEARCH", None),
    "paid_search": ("PAID_SEARCH", None),
    "social": ("SOCIAL_MEDIA", None),
    "referral": ("REFERRALS", None),
    "direct": ("DIRECT_TRAFFIC", None),
    "email": ("EMAIL_MARKETING", None),
    "chat": ("OFFLINE", "CONVERSATIONS"),
    "offline": ("OFFLINE", "CRM_UI"),
    "import": ("OFFLINE", "IMPORT"),
    "api": ("OFFLINE", "API"),
    "other": ("OTHER_CAMPAIGNS", None),
}
_CALL_STATUS = {
    "connected": "COMPLETED",
    "no_answer": "NO_ANSWER",
    "busy": "BUSY",
    "voicemail": "COMPLETED",
    "wrong_number": "COMPLETED",
}
_MEETING_OUTCOME = {
    "scheduled": "SCHEDULED",
    "completed": "COMPLETED",
    "no_show": "NO_SHOW",
    "cancelled": "CANCELED",
    "rescheduled": "RESCHEDULED",
}
# Canonical activity types HubSpot keeps no object for: rendered as notes "[type] text".
NOTE_TAGGED_TYPES = (
    "sms",
    "chat_message",
    "event_attended",
    "social_engagement",
    "referral",
    "complaint",
    "payment_late",
    "refund",
)
# Canonical types HubSpot only keeps as contact roll-ups (count property, last-date property).
ROLLUPS = {
    "page_view": ("hs_analytics_num_page_views", "hs_analytics_last_timestamp"),
    "web_session": ("hs_analytics_num_visits", "hs_analytics_last_visit_timestamp"),
    "email_open": ("hs_email_open", "hs_email_last_open_date"),
    "email_click": ("hs_email_click", "hs_email_last_click_date"),
    "form_submission": ("num_conversion_events", "recent_conversion_date"),
}


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _dob(birthday: pd.Timestamp, style: float) -> str:
    """date_of_birth is free text in HubSpot: mostly ISO, some "02.05.1990" or "1990/05/02"."""
    if birthday.year == 1904:
        return f"--{birthday.month:02d}-{birthday.day:02d}"
    if style < 0.8:
        return f"{birthday.year:04d}-{birthday.month:02d}-{birthday.day:02d}"
    if style < 0.9:
        return f"{birthday.day:02d}.{birthday.month:02d}.{birthday.year:04d}"
    return f"{birthday.year:04d}/{birthday.month:02d}/{birthday.day:02d}"


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def render_truth(portal: Portal, *, plant_bad_records: bool = True) -> HubSpotState:
    """Render a neutral portal into HubSpot's shapes (see sandbox/README.md for the mapping).

    Object ids equal the truth's ids (contact_id, deal_id, activity_id). With
    `plant_bad_records`, a few extra records for quarantine/merge tests are added; their ids are
    listed in `state.meta["planted"]`.
    """
    state = HubSpotState()
    anchor_ms = _ms(portal.anchor_ts)
    stamp = iso_ms(anchor_ms - 3 * 365 * 86_400_000)
    state.set_owners(portal.owners, stamp)
    state.pipelines = schema.default_pipelines(stamp)
    rng = np.random.default_rng([portal.seed, 1])

    contacts = portal.contacts
    acts = portal.activities
    deals = portal.deals

    # last "modified" per contact: its latest past event (HubSpot bumps it on logged activity)
    past = acts[acts["occurred_at"] <= portal.anchor_ts]
    last_event = past.groupby("contact_id")["occurred_at"].max()
    last_deal = deals.groupby("contact_id")[["created_at", "closed_at"]].max().max(axis=1)

    rollup: dict[str, dict[str, tuple[int, pd.Timestamp]]] = {}
    for type_, frame in past[past["type"].isin(list(ROLLUPS))].groupby("type"):
        agg = frame.groupby("contact_id")["occurred_at"].agg(["count", "max"])
        rollup[str(type_)] = {
            cid: (int(c), m) for cid, c, m in zip(agg.index, agg["count"], agg["max"], strict=True)
        }
    forms = past[past["type"] == "form_submission"].sort_values("occurred_at")
    last_form = forms.groupby("contact_id")[["text", "subject"]].last()
    first_form = forms.groupby("contact_id")["occurred_at"].min()

    styles = rng.random(len(contacts))
    for i, row in enumerate(contacts.itertuples(index=False)):
        cid = str(row.contact_id)
        created = _ms(row.created_at)
        mod = created
        for series in (last_event, last_deal):
            if cid in series.index and pd.notna(series[cid]):
                mod = max(mod, _ms(series[cid]))
        mod = min(mod + 300_000, anchor_ms)
        source, drill = _SOURCES.get(row.source or "other", ("OTHER_CAMPAIGNS", None))
        props: dict[str, str | None] = {
            "firstname": row.first_name,
            "lastname": row.last_name,
            "email": row.email,
            "phone": row.phone,
            "createdate": iso_ms(created),
            "hubspot_owner_id": row.owner_id,
            "lifecyclestage": row.lifecycle_stage,
            "hs_analytics_source": source,
            "hs_analytics_source_data_1": drill,
            "date_of_birth": None if pd.isna(row.birthday) else _dob(row.birthday, styles[i]),
            "hs_email_optout": "true" if row.do_not_contact else "false",
            "heatsync_vip": "true" if row.is_vip else "false",
        }
        for type_, (count_prop, date_prop) in ROLLUPS.items():
            hit = rollup.get(type_, {}).get(cid)
            if hit:
                props[count_prop] = str(hit[0])
                props[date_prop] = iso_ms(_ms(hit[1]))
        if cid in last_form.index:
            props["message"] = last_form.at[cid, "text"]
            props["recent_conversion_event_name"] = last_form.at[cid, "subject"]
            props["first_conversion_date"] = iso_ms(_ms(first_form[cid]))
        views = rollup.get("page_view", {}).get(cid)
        sessions = rollup.get("web_session", {}).get(cid)
        if views or sessions:
            seen = max(x[1] for x in (views, sessions) if x)
            props["hs_analytics_last_timestamp"] = iso_ms(_ms(seen))
        state.add("contacts", props, created, mod, obj_id=int(cid))

    owner_of = dict(zip(contacts["contact_id"], contacts["owner_id"], strict=True))
    rendered = acts[~acts["type"].isin([*ROLLUPS, "unsubscribe"])]
    r2 = rng.random((len(rendered), 3))
    for i, a in enumerate(rendered.itertuples(index=False)):
        at = _ms(a.occurred_at)
        created = min(at, anchor_ms - 86_400_000) if at > anchor_ms else at
        owner = owner_of.get(a.contact_id)
        kind = a.type
        props = {"hs_timestamp": iso_ms(at), "hubspot_owner_id": owner}
        if kind == "call":
            props |= {
                "hs_call_direction": "INBOUND" if a.direction == "inbound" else "OUTBOUND",
                "hs_call_status": _CALL_STATUS[a.outcome],
                "hs_call_disposition": schema.CALL_DISPOSITIONS[a.outcome],
                "hs_call_duration": str(int((a.duration_s or 0) * 1000)),
                "hs_call_body": a.text,
                "hs_call_title": "Inbound call" if a.direction == "inbound" else "Outbound call",
            }
            if a.outcome == "voicemail":
                props["hs_call_has_voicemail"] = "true"
            obj_type, to_contact = "calls", 194
        elif kind in ("email_sent", "email_reply", "email_bounce"):
            props |= {
                "hs_email_direction": "INCOMING_EMAIL" if kind == "email_reply" else "EMAIL",
                "hs_email_status": "BOUNCED" if kind == "email_bounce" else "SENT",
                "hs_email_subject": a.subject,
                "hs_email_text": a.text,
            }
            obj_type, to_contact = "emails", 198
        elif kind == "meeting":
            end = at + int((a.duration_s if a.duration_s == a.duration_s else 1800) * 1000)
            props |= {
                "hs_meeting_title": a.subject or a.text,
                "hs_meeting_start_time": iso_ms(at),
                "hs_meeting_end_time": iso_ms(end),
                "hs_meeting_outcome": _MEETING_OUTCOME[a.outcome],
            }
            obj_type, to_contact = "meetings", 200
        elif kind == "task_completed":
            props |= {
                "hs_task_subject": a.subject or a.text,
                "hs_task_status": "COMPLETED",
                "hs_task_completion_date": iso_ms(at),
                "hs_task_priority": ("LOW", "MEDIUM", "HIGH")[int(r2[i, 0] * 3)],
                "hs_task_type": ("CALL", "EMAIL", "TODO")[int(r2[i, 1] * 3)],
            }
            obj_type, to_contact = "tasks", 204
        elif kind == "note":
            props["hs_note_body"] = a.text
            obj_type, to_contact = "notes", 202
        elif kind in NOTE_TAGGED_TYPES:
            tag = f"{kind} {a.direction}" if a.direction else kind
            props["hs_note_body"] = f"[{tag}] {a.text or ''}".rstrip()
            obj_type, to_contact = "notes", 202
        else:  # pragma: no cover - every canonical type is handled above
            raise ValueError(f"no HubSpot rendering for activity type {kind!r}")
        created = created - int(r2[i, 2] * 3_600_000) if at > anchor_ms else created
        rec = state.add(
            obj_type, props, created, max(created, min(at, anchor_ms)), obj_id=int(a.activity_id)
        )
        state.associate(obj_type, rec.id, "contacts", int(a.contact_id), to_contact)

    for d in deals.itertuples(index=False):
        created = _ms(d.created_at)
        closed = None if pd.isna(d.closed_at) else _ms(d.closed_at)
        props = {
            "dealname": d.name,
            "amount": None if pd.isna(d.amount) else _amount(d.amount),
            "dealstage": d.stage,
            "pipeline": "default",
            "closedate": None if closed is None else iso_ms(closed),
            "createdate": iso_ms(created),
            "deal_currency_code": d.currency,
            "hubspot_owner_id": owner_of.get(d.contact_id),
            "hs_is_closed_won": "true" if d.status == "won" else "false",
            "hs_is_closed": "true" if d.status != "open" else "false",
        }
        rec = state.add("deals", props, created, closed or created, obj_id=int(d.deal_id))
        state.associate("deals", rec.id, "contacts", int(d.contact_id), 3)

    state.meta = {
        "anchor": portal.anchor.isoformat(),
        "seed": portal.seed,
        "contacts": len(contacts),
        "portal": portal.portal,
        "planted": _plant(state, portal, anchor_ms) if plant_bad_records else {},
    }
    state.version = 0
    return state


def _plant(state: HubSpotState, portal: Portal, anchor_ms: int) -> dict[str, Any]:
    """Add the records connector tests need: unparseable values, archived and merged contacts."""
    day = 86_400_000
    planted: dict[str, Any] = {}
    contacts = portal.contacts
    first_id = int(contacts["contact_id"].iloc[0])

    bad = state.add(
        "contacts",
        {"firstname": "Broken", "lastname": "Record", "email": "broken.record@example.com"},
        anchor_ms - 30 * day,
    )
    bad.props["createdate"] = "not-a-date"
    planted["bad_createdate_contact"] = str(bad.id)

    call = state.add(
        "calls",
        {
            "hs_timestamp": iso_ms(anchor_ms - 5 * day),
            "hs_call_direction": "OUTBOUND",
            "hs_call_status": "COMPLETED",
            "hs_call_disposition": schema.CALL_DISPOSITIONS["connected"],
            "hs_call_duration": "about five minutes",
            "hs_call_body": "Duration typed by hand",
        },
        anchor_ms - 5 * day,
    )
    state.associate("calls", call.id, "contacts", first_id, 194)
    planted["bad_duration_call"] = str(call.id)

    no_bday = contacts.loc[contacts["birthday"].isna(), "contact_id"]
    if len(no_bday):
        rec = state.get("contacts", no_bday.iloc[0])
        assert rec is not None
        rec.props["date_of_birth"] = "sometime in May"
        planted["free_text_birthday_contact"] = str(rec.id)

    archived = []
    for k in range(2):
        rec = state.add(
            "contacts",
            {
                "firstname": "Archived",
                "lastname": f"Contact {k + 1}",
                "email": f"archived{k + 1}@example.com",
            },
            anchor_ms - (200 + k) * day,
        )
        state.archive("contacts", rec, anchor_ms - (20 + k) * day)
        archived.append(str(rec.id))
    planted["archived_contacts"] = archived

    survivor_id = int(contacts.loc[contacts["archetype"] == "warm", "contact_id"].iloc[0])
    survivor = state.get("contacts", survivor_id)
    assert survivor is not None
    old = state.add(
        "contacts",
        {
            "firstname": survivor.props.get("firstname"),
            "lastname": survivor.props.get("lastname"),
            "email": "old." + (survivor.props.get("email") or f"{survivor_id}@example.com"),
        },
        anchor_ms - 400 * day,
    )
    state.archive("contacts", old, anchor_ms - 10 * day)
    survivor.props["hs_merged_object_ids"] = str(old.id)
    state.merged_into[old.id] = survivor.id
    planted["merged"] = {"survivor": str(survivor.id), "merged_away": str(old.id)}
    return planted


def generate_state(
    contacts: int = 2000,
    seed: int = 7,
    anchor: date | None = None,
    *,
    plant_bad_records: bool = True,
) -> HubSpotState:
    """Convenience: `render_truth(generate_portal(...))`."""
    from sandbox.portal import generate_portal

    return render_truth(
        generate_portal(contacts, seed, anchor), plant_bad_records=plant_bad_records
    )
