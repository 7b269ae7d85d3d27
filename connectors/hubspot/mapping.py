"""HubSpot payloads -> canonical rows (scoring.contract): row models and a mapper per object.

Pure: no HTTP, no connector state; values are parsed by connectors.hubspot.values. Each record
is validated on its own (pydantic row models); a record that cannot be mapped (no id, a bad date,
a non-numeric number) raises ValueError or ValidationError, which the extract turns into a
quarantine row (`quarantine_row`) with a reason.

Mapping notes:
- contacts: HubSpot roll-ups (form submissions, page views, marketing email opens/clicks) become
  one `is_rollup` activity each at the last date, id `rollup:{type}:{contact_id}` (stable across
  runs), with the counter in contact columns `<type>_count`.
- activities: `activity_id` is `"{kind}:{hubspot_id}:{contact_id}"` (kind = call, email, meeting,
  note, task), unique within a portal even when one engagement is associated with several
  contacts; the raw HubSpot id is in the extra column `crm_id`, the object type in `crm_type`.
- notes whose body starts with a bracketed tag of a canonical type ("[complaint] ...",
  "[sms inbound] ...") become that type; the tag set is `HubSpotSettings.note_tags`.
- deals: one row per (deal, associated contact); status from pipeline stage metadata.
- merged-away ids come from survivors' `hs_merged_object_ids` (`merged_away`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError, field_validator

from connectors.base import OWN_TASK_COLUMNS, QUARANTINE_COLUMNS, empty_own_tasks
from connectors.http import redact
from connectors.hubspot.models import HubSpotObject, Pipeline
from connectors.hubspot.settings import (
    CALL_DISPOSITIONS,
    CALL_STATUS_OUTCOMES,
    CONTACT_PROPERTIES,
    CONTACTS,
    FIELD_PROPERTIES,
    MEETING_OUTCOMES,
    OFFLINE_DRILLDOWN,
    SOURCE_MAP,
    TASK_KEY_PROPERTY,
    UPDATED_AT_PROPERTY,
)
from connectors.hubspot.values import Num, Ts, clip, parse_birthday, parse_num, parse_ts, strip_html
from scoring import contract

_T = TypeVar("_T")
ROLLUP_COUNT_COLUMNS = {
    "form_submission_count": "float",
    "page_view_count": "float",
    "web_session_count": "float",
    "email_open_count": "float",
    "email_click_count": "float",
}
ACTIVITY_EXTRA = {"crm_id": "str", "crm_type": "str"}
ACTIVITY_KIND = {
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
    "tasks": "task",
}

# --------------------------------------------------------------------------------------------
# Row models (validation record by record)


class _Row(BaseModel):
    model_config = {"extra": "allow"}


class ContactRow(_Row):
    contact_id: str
    created_at: Ts
    owner_id: str | None = None
    current_score: Num = None
    current_touches_30d: Num = None
    current_next_touch_due: Ts = None
    current_updated_at: Ts = None
    form_submission_count: Num = None
    page_view_count: Num = None
    web_session_count: Num = None
    email_open_count: Num = None
    email_click_count: Num = None

    @field_validator("contact_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("missing id")
        return value

    @field_validator("created_at")
    @classmethod
    def _created(cls, value: datetime | None) -> datetime:
        if value is None:
            raise ValueError("missing createdate")
        return value


class ActivityRow(_Row):
    crm_id: str
    occurred_at: Ts
    type: str
    duration_s: Num = None

    @field_validator("occurred_at")
    @classmethod
    def _when(cls, value: datetime | None) -> datetime:
        if value is None:
            raise ValueError("missing timestamp")
        return value


class DealRow(_Row):
    deal_id: str
    created_at: Ts
    closed_at: Ts = None
    amount: Num = None
    stage_probability: Num = None

    @field_validator("created_at")
    @classmethod
    def _created(cls, value: datetime | None) -> datetime:
        if value is None:
            raise ValueError("missing createdate")
        return value


def _field(name: str, parser: Callable[[Any], _T], value: Any) -> _T:
    """Run a parser, naming the property in the error."""
    try:
        return parser(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())) or "record"
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
        return redact("; ".join(parts))[:500]
    return redact(str(exc))[:500]


# --------------------------------------------------------------------------------------------
# Bookkeeping rows


def quarantine_row(portal: str, object_type: str, record: Any, exc: Exception) -> dict[str, Any]:
    """The quarantine row (connectors.base.QUARANTINE_COLUMNS) of a record that failed."""
    raw = record.model_dump() if isinstance(record, BaseModel) else record
    object_id = raw.get("id") if isinstance(raw, dict) else None
    try:
        payload = json.dumps(raw, default=str, sort_keys=True)
    except (TypeError, ValueError):
        payload = repr(raw)
    return {
        "portal": portal,
        "object_type": object_type,
        "object_id": None if object_id in (None, "") else str(object_id),
        "reason": _reason(exc),
        "payload": redact(payload),
    }


def quarantine_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS))


def own_task(obj: HubSpotObject) -> dict[str, Any]:
    """A task heatsync created (it carries a task key): key, id, creation time."""
    created = parse_ts(obj.prop("hs_createdate") or obj.createdAt)
    return {"task_key": obj.prop(TASK_KEY_PROPERTY), "task_id": obj.id, "created_at": created}


def own_tasks_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_own_tasks()
    frame = pd.DataFrame(rows, columns=list(OWN_TASK_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.drop_duplicates("task_key", keep="first").reset_index(drop=True)


def contacts_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The contacts table; a contact listed twice (it changed while the pages were read) once,
    as last read."""
    frame = contract.conform(pd.DataFrame(rows), "contacts", ROLLUP_COUNT_COLUMNS)
    if len(frame):
        frame = frame.drop_duplicates(subset=["portal", "contact_id"], keep="last")
    return frame.reset_index(drop=True)


def activities_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = contract.conform(pd.DataFrame(rows), "activities", ACTIVITY_EXTRA)
    if len(frame):
        frame = frame.drop_duplicates(subset=["portal", "activity_id"], keep="last")
    return frame.reset_index(drop=True)


def deals_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return contract.conform(pd.DataFrame(rows), "deals")


# --------------------------------------------------------------------------------------------
# Contacts


def contact_properties(vip_property: str) -> list[str]:
    """The contact properties to read: the standard ones and the portal's VIP property."""
    return list(dict.fromkeys([*CONTACT_PROPERTIES, vip_property]))


def merged_away(contacts: Iterable[HubSpotObject]) -> set[str]:
    """Ids merged into the given contacts (their `hs_merged_object_ids`, the survivor excluded)."""
    merged: set[str] = set()
    for obj in contacts:
        for mid in (obj.prop("hs_merged_object_ids") or "").split(";"):
            if mid.strip() and mid.strip() != obj.id:
                merged.add(mid.strip())
    return merged


def _source(p: Callable[[str], str | None]) -> str | None:
    source_raw = p("hs_analytics_source")
    source = SOURCE_MAP.get(source_raw.upper(), "other") if source_raw else None
    if source == "offline":
        drill = (p("hs_analytics_source_data_1") or "").upper()
        source = OFFLINE_DRILLDOWN.get(drill, "offline")
    return source


def contact(
    obj: HubSpotObject, portal: str, vip_property: str, warnings: Counter[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A contact row and its roll-up activities; an unparseable birthday only warns."""
    p = obj.prop
    name = " ".join(x for x in (p("firstname"), p("lastname")) if x) or None
    try:
        birthday = parse_birthday(p("date_of_birth"))
    except ValueError:
        birthday = None
        warnings["birthday_unparsed"] += 1
    optout = (p("hs_email_optout") or "").lower() == "true"
    raw = {
        "contact_id": obj.id,
        "portal": portal,
        "created_at": p("createdate") or obj.createdAt,
        "owner_id": p("hubspot_owner_id"),
        "name": name,
        "email": p("email"),
        "phone": p("phone"),
        "source": _source(p),
        "lifecycle_stage": p("lifecyclestage"),
        "birthday": birthday,
        "do_not_contact": optout,
        "is_vip": (p(vip_property) or "").lower() == "true",
        "current_temperature": p(FIELD_PROPERTIES["temperature"]),
        "current_score": p(FIELD_PROPERTIES["score"]),
        "current_segment": p(FIELD_PROPERTIES["segment"]),
        "current_reasons": p(FIELD_PROPERTIES["reasons"]),
        "current_trend": p(FIELD_PROPERTIES["trend"]),
        "current_next_touch_due": p(FIELD_PROPERTIES["next_touch_due"]),
        "current_touches_30d": p(FIELD_PROPERTIES["touches_30d"]),
        "current_updated_at": p(UPDATED_AT_PROPERTY),
        "form_submission_count": p("num_conversion_events"),
        "page_view_count": p("hs_analytics_num_page_views"),
        "web_session_count": p("hs_analytics_num_visits"),
        "email_open_count": p("hs_email_open"),
        "email_click_count": p("hs_email_click"),
    }
    row = ContactRow.model_validate(raw).model_dump()
    for day_col in ("current_next_touch_due", "current_updated_at"):
        if row[day_col] is not None:
            row[day_col] = row[day_col].replace(tzinfo=None)
    return row, _rollups(obj, portal, optout)


def _rollups(obj: HubSpotObject, portal: str, optout: bool) -> list[dict[str, Any]]:
    """Roll-up counters -> one activity each at the last date."""
    p = obj.prop
    specs: list[tuple[str, str, str | None]] = [
        (
            "form_submission",
            "recent_conversion_date",
            p("message") or p("recent_conversion_event_name"),
        ),
        ("page_view", "hs_analytics_last_timestamp", None),
        ("web_session", "hs_analytics_last_visit_timestamp", None),
        ("email_open", "hs_email_last_open_date", None),
        ("email_click", "hs_email_last_click_date", None),
    ]
    if optout:
        specs.append(("unsubscribe", "hs_email_optout_date", None))
    acts: list[dict[str, Any]] = []
    for kind, date_prop, text in specs:
        when = _field(date_prop, parse_ts, p(date_prop))
        if when is None:
            continue
        acts.append(
            {
                "activity_id": f"rollup:{kind}:{obj.id}",
                "contact_id": obj.id,
                "portal": portal,
                "occurred_at": when,
                "type": kind,
                "direction": "inbound",
                "text": clip(text),
                "is_rollup": True,
                "crm_id": obj.id,
                "crm_type": CONTACTS,
            }
        )
    return acts


# --------------------------------------------------------------------------------------------
# Activities (calls, emails, meetings, notes, tasks)

NOTE_TAG = re.compile(r"^\s*\[\s*([A-Za-z_]+)(?:\s+(inbound|outbound))?\s*\]\s*(.*)$", re.S | re.I)
_Getter = Callable[[str], str | None]


def _call(row: dict[str, Any], p: _Getter, note_tags: tuple[str, ...]) -> None:
    row["type"] = "call"
    direction = (p("hs_call_direction") or "").upper()
    row["direction"] = {"INBOUND": "inbound", "OUTBOUND": "outbound"}.get(direction)
    outcome = CALL_DISPOSITIONS.get((p("hs_call_disposition") or "").lower())
    if outcome is None:
        outcome = CALL_STATUS_OUTCOMES.get((p("hs_call_status") or "").upper())
    row["outcome"] = outcome
    duration_ms = _field("hs_call_duration (duration_s)", parse_num, p("hs_call_duration"))
    row["duration_s"] = None if duration_ms is None else duration_ms / 1000.0
    row["text"] = clip(strip_html(p("hs_call_body") or p("hs_call_title")))


def _email(row: dict[str, Any], p: _Getter, note_tags: tuple[str, ...]) -> None:
    direction = (p("hs_email_direction") or "").upper()
    if (p("hs_email_status") or "").upper() == "BOUNCED":
        row["type"], row["direction"] = "email_bounce", "outbound"
    elif direction == "INCOMING_EMAIL":
        row["type"], row["direction"] = "email_reply", "inbound"
    else:
        row["type"], row["direction"] = "email_sent", "outbound"
    subject, body = p("hs_email_subject"), strip_html(p("hs_email_text"))
    row["text"] = clip(" — ".join(x for x in (subject, body) if x) or None)


def _meeting(row: dict[str, Any], p: _Getter, note_tags: tuple[str, ...]) -> None:
    row["type"] = "meeting"
    row["occurred_at"] = p("hs_meeting_start_time") or row["occurred_at"]
    row["outcome"] = MEETING_OUTCOMES.get((p("hs_meeting_outcome") or "").upper())
    start = _field("hs_meeting_start_time", parse_ts, p("hs_meeting_start_time"))
    end = _field("hs_meeting_end_time", parse_ts, p("hs_meeting_end_time"))
    if start and end and end >= start:
        row["duration_s"] = (end - start).total_seconds()
    title, body = p("hs_meeting_title"), strip_html(p("hs_meeting_body"))
    row["text"] = clip(" — ".join(x for x in (title, body) if x) or None)


def _note(row: dict[str, Any], p: _Getter, note_tags: tuple[str, ...]) -> None:
    body = strip_html(p("hs_note_body"))
    row["type"], row["text"] = "note", clip(body)
    match = NOTE_TAG.match(body or "")
    if match and match.group(1).lower() in note_tags:
        row["type"] = match.group(1).lower()
        row["direction"] = match.group(2).lower() if match.group(2) else None
        row["text"] = clip(match.group(3)) or None


def _task(row: dict[str, Any], p: _Getter, note_tags: tuple[str, ...]) -> None:
    row["type"] = "task_completed"
    row["occurred_at"] = p("hs_task_completion_date") or row["occurred_at"]
    row["text"] = clip(p("hs_task_subject"))


_ACTIVITY_MAPPERS: dict[str, Callable[[dict[str, Any], _Getter, tuple[str, ...]], None]] = {
    "calls": _call,
    "emails": _email,
    "meetings": _meeting,
    "notes": _note,
    "tasks": _task,
}


def activity(
    object_type: str, obj: HubSpotObject, note_tags: tuple[str, ...]
) -> dict[str, Any] | None:
    """The activity row of one engagement (without contact), or None when it is no contact
    activity (an open task, or one of heatsync's own)."""
    p = obj.prop
    if object_type == "tasks" and (
        p(TASK_KEY_PROPERTY) or (p("hs_task_status") or "").upper() != "COMPLETED"
    ):
        return None  # heatsync's own tasks and open tasks are not contact activity
    mapper = _ACTIVITY_MAPPERS.get(object_type)
    if mapper is None:  # pragma: no cover - guarded by ACTIVITY_OBJECTS
        raise ValueError(f"unknown activity object {object_type}")
    row: dict[str, Any] = {
        "crm_id": obj.id,
        "crm_type": object_type,
        "occurred_at": p("hs_timestamp") or obj.createdAt,
        "direction": None,
        "outcome": None,
        "duration_s": None,
        "text": None,
        "is_rollup": False,
    }
    mapper(row, p, note_tags)
    return ActivityRow.model_validate(row).model_dump()


# --------------------------------------------------------------------------------------------
# Deals

# stage id -> (label, probability, is_closed); also keyed "pipeline:stage"
Stages = dict[str, tuple[str, float | None, bool]]


def stages(pipelines: Iterable[Pipeline]) -> Stages:
    """The deal stages of all pipelines, by stage id and by "pipeline:stage"."""
    out: Stages = {}
    for pipeline in pipelines:
        for stage in pipeline.stages:
            value = (stage.label, stage.metadata.prob(), stage.metadata.closed())
            out.setdefault(stage.id, value)
            out[f"{pipeline.id}:{stage.id}"] = value
    return out


def deal(obj: HubSpotObject, stages: Stages, currency: str | None) -> dict[str, Any]:
    """The deal row (without contact); won / lost / open from the stage's metadata."""
    p = obj.prop
    stage_id = p("dealstage")
    meta = stages.get(f"{p('pipeline')}:{stage_id}") or stages.get(stage_id or "")
    label, prob, closed = meta if meta else (stage_id, None, False)
    if closed and prob is not None and prob >= 1.0:
        status = "won"
    elif closed and (prob is None or prob <= 0.0):
        status = "lost"
    else:
        status = "open"
    raw = {
        "deal_id": obj.id,
        "created_at": p("createdate") or obj.createdAt,
        "closed_at": p("closedate") if status != "open" else None,
        "status": status,
        "stage": label,
        "stage_probability": prob,
        "amount": p("amount"),
        "currency": p("deal_currency_code") or currency,
    }
    return DealRow.model_validate(raw).model_dump()
