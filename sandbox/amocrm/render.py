"""Render the neutral demo portal (`sandbox.portal`) into an amoCRM account (`AmoState`).

See sandbox/README.md ("amoCRM sandbox") for the mapping. Ids: contacts keep the truth's contact
ids, leads its deal ids; notes, tasks and events get their own ids. Deterministic for the portal.
"""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import pandas as pd

from sandbox.amocrm.account import (
    ACCOUNT_ID,
    ADMIN_USER_ID,
    FIELD_ID_BASE,
    MAIN_PIPELINE_ID,
    NOTE_ID_BASE,
    SOURCE_LABELS,
    STAGE_STATUS,
    TASK_ID_BASE,
    build_account,
)
from sandbox.amocrm.state import (
    AmoState,
    local_midnight,
)
from sandbox.portal import Portal

# amoCRM call_status codes (calls API): 1 left a message, 2 call back later, 3 not available,
# 4 talked, 5 wrong number, 6 did not get through, 7 busy.
CALL_STATUS = {"connected": 4, "no_answer": 6, "busy": 7, "voicemail": 1, "wrong_number": 5}
# Canonical activity types amoCRM has no object for: notes whose text starts with "[type] ".
TAGGED_COMMON = (
    "note",
    "event_attended",
    "social_engagement",
    "referral",
    "complaint",
    "payment_late",
    "refund",
)
TAGGED_SERVICE = ("form_submission", "email_sent", "email_reply", "email_bounce")
NOT_RENDERED = ("page_view", "web_session", "email_open", "email_click", "unsubscribe")
MEETING_RESULT = {
    "completed": "Встреча состоялась",
    "no_show": "Клиент не пришёл",
    "cancelled": "Встреча отменена",
    "rescheduled": "Встреча перенесена",
}


def _s(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000_000)


def _value(definition: dict[str, Any], values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "field_id": definition["id"],
        "field_name": definition["name"],
        "field_code": definition["code"],
        "field_type": definition["type"],
        "values": values,
    }


def _enum(definition: dict[str, Any], *, code: str | None = None, value: str | None = None):
    for item in definition["enums"] or []:
        if (code is not None and item.get("code") == code) or (
            value is not None and item["value"] == value
        ):
            return item
    raise KeyError(code or value)


def _contact_fields(state: AmoState, row: Any, rng: random.Random, tz: str) -> list[dict[str, Any]]:
    fields = {f["id"]: f for f in state.custom_fields["contacts"]}
    phone_f, email_f, _, bday_f, source_f, dnc_f, vip_f = (
        fields[FIELD_ID_BASE + k] for k in range(7)
    )
    out = []
    if isinstance(row.phone, str):
        code = "MOB" if rng.random() < 0.7 else "WORK"
        phones = [{"value": row.phone, "enum_id": _enum(phone_f, code=code)["id"], "enum": code}]
        if rng.random() < 0.15:
            extra = f"+371 67{rng.randrange(100000, 999999)}"
            phones.append(
                {"value": extra, "enum_id": _enum(phone_f, code="WORK")["id"], "enum": "WORK"}
            )
        out.append(_value(phone_f, phones))
    if isinstance(row.email, str):
        code = "WORK" if rng.random() < 0.6 else "PRIV"
        item = _enum(email_f, code=code)
        out.append(_value(email_f, [{"value": row.email, "enum_id": item["id"], "enum": code}]))
    if pd.notna(row.birthday):
        day = date(row.birthday.year, row.birthday.month, row.birthday.day)
        out.append(_value(bday_f, [{"value": local_midnight(day, tz)}]))
    label = SOURCE_LABELS.get(row.source or "other", SOURCE_LABELS["other"])
    src = _enum(source_f, value=label)
    out.append(_value(source_f, [{"value": label, "enum_id": src["id"]}]))
    if row.do_not_contact:
        out.append(_value(dnc_f, [{"value": True}]))
    if row.is_vip:
        out.append(_value(vip_f, [{"value": True}]))
    return out


def render_truth(portal: Portal, *, plant_bad_records: bool = True) -> AmoState:
    """Render a neutral portal into amoCRM's shapes (see sandbox/README.md for the mapping)."""
    state = AmoState()
    build_account(state, portal.owners, _s(portal.anchor_ts))
    tz = state.timezone
    anchor = _s(portal.anchor_ts)
    rng = random.Random(f"{portal.seed}:amocrm")
    owner_of: dict[str, int] = {}
    phone_of: dict[str, str] = {}

    for row in portal.contacts.itertuples(index=False):
        cid = int(row.contact_id)
        owner = int(row.owner_id) if isinstance(row.owner_id, str) else ADMIN_USER_ID
        owner_of[row.contact_id] = owner
        phone_of[row.contact_id] = row.phone if isinstance(row.phone, str) else ""
        created = _s(row.created_at)
        updated = min(anchor, created + rng.randrange(0, 30 * 86_400))
        state.contacts[cid] = {
            "id": cid,
            "name": row.name,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "responsible_user_id": owner,
            "group_id": 0,
            "created_by": ADMIN_USER_ID,
            "updated_by": ADMIN_USER_ID,
            "created_at": created,
            "updated_at": updated,
            "closest_task_at": None,
            "is_deleted": False,
            "is_unsorted": False,
            "custom_fields_values": _contact_fields(state, row, rng, tz) or None,
            "account_id": ACCOUNT_ID,
        }
        state.bump_id("contact", cid)
        state.add_event("contact_added", "contact", cid, created, ADMIN_USER_ID)

    for d in portal.deals.itertuples(index=False):
        lid = int(d.deal_id)
        created = _s(d.created_at)
        closed = None if pd.isna(d.closed_at) else _s(d.closed_at)
        status = STAGE_STATUS[d.stage]
        owner = owner_of.get(d.contact_id, ADMIN_USER_ID)
        state.leads[lid] = {
            "id": lid,
            "name": d.name,
            "price": round(float(d.amount)) if pd.notna(d.amount) else 0,
            "responsible_user_id": owner,
            "group_id": 0,
            "status_id": status,
            "pipeline_id": MAIN_PIPELINE_ID,
            "loss_reason_id": None,
            "created_by": owner,
            "updated_by": owner,
            "created_at": created,
            "updated_at": closed or created,
            "closed_at": closed,
            "closest_task_at": None,
            "is_deleted": False,
            "custom_fields_values": None,
            "score": None,
            "account_id": ACCOUNT_ID,
            "labor_cost": None,
            "contacts": [{"id": int(d.contact_id), "is_main": True}],
        }
        state.bump_id("lead", lid)
        state.add_event("lead_added", "lead", lid, created, owner)
        if closed is not None:
            before = {"id": STAGE_STATUS["contractsent"], "pipeline_id": MAIN_PIPELINE_ID}
            state.add_event(
                "lead_status_changed",
                "lead",
                lid,
                closed,
                owner,
                [{"lead_status": {"id": status, "pipeline_id": MAIN_PIPELINE_ID}}],
                [{"lead_status": before}],
            )

    state.next_ids.setdefault("note", NOTE_ID_BASE)
    state.next_ids.setdefault("task", TASK_ID_BASE)
    acts = portal.activities
    for a in acts[~acts["type"].isin(NOT_RENDERED)].itertuples(index=False):
        _activity(state, a, owner_of, phone_of, anchor, rng)
    _closest_tasks(state)
    planted = _plant(state, portal, anchor) if plant_bad_records else {}
    state.sort_events()
    state.meta = {
        "anchor": portal.anchor.isoformat(),
        "seed": portal.seed,
        "contacts": len(portal.contacts),
        "portal": portal.portal,
        "planted": planted,
    }
    state.version = 0
    return state


def _note(
    state: AmoState, cid: int, owner: int, at: int, note_type: str, params: dict[str, Any]
) -> dict[str, Any]:
    nid = state.new_id("note")
    note = {
        "id": nid,
        "entity_id": cid,
        "created_by": owner,
        "updated_by": owner,
        "created_at": at,
        "updated_at": at,
        "responsible_user_id": owner,
        "group_id": 0,
        "note_type": note_type,
        "params": params,
        "account_id": state.account_id,
    }
    state.notes["contacts"][nid] = note
    return note


def _task(
    state: AmoState,
    cid: int,
    owner: int,
    created: int,
    type_id: int,
    text: str,
    till: int,
    duration: int,
    result: str | None,
) -> dict[str, Any]:
    tid = state.new_id("task")
    task = {
        "id": tid,
        "created_by": owner,
        "updated_by": owner,
        "created_at": created,
        "updated_at": till if result is not None else created,
        "responsible_user_id": owner,
        "group_id": 0,
        "entity_id": cid,
        "entity_type": "contacts",
        "is_completed": result is not None,
        "task_type_id": type_id,
        "text": text,
        "duration": duration,
        "complete_till": till,
        "result": {"text": result} if result is not None else [],
        "account_id": state.account_id,
    }
    state.tasks[tid] = task
    return task


def _activity(
    state: AmoState,
    a: Any,
    owner_of: dict[str, int],
    phone_of: dict[str, str],
    anchor: int,
    rng: random.Random,
) -> None:
    cid = int(a.contact_id)
    owner = owner_of.get(a.contact_id, ADMIN_USER_ID)
    at = _s(a.occurred_at)
    kind = a.type
    text = a.text if isinstance(a.text, str) else ""
    inbound = a.direction == "inbound"
    if kind == "call":
        params = {
            "uniq": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "duration": int(a.duration_s) if pd.notna(a.duration_s) else 0,
            "source": "sandbox-pbx",
            "link": "",
            "phone": phone_of.get(a.contact_id, ""),
            "call_responsible": owner,
            "call_status": CALL_STATUS[a.outcome],
            "call_result": text,
        }
        note = _note(state, cid, owner, at, "call_in" if inbound else "call_out", params)
        etype = "incoming_call" if inbound else "outgoing_call"
        state.add_event(etype, "contact", cid, at, owner, [{"note": {"id": note["id"]}}])
    elif kind == "sms":
        params = {"text": text, "phone": phone_of.get(a.contact_id, "")}
        note = _note(state, cid, owner, at, "sms_in" if inbound else "sms_out", params)
        etype = "incoming_sms" if inbound else "outgoing_sms"
        state.add_event(etype, "contact", cid, at, owner, [{"note": {"id": note["id"]}}])
    elif kind == "chat_message":
        message = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        etype = "incoming_chat_message" if inbound else "outgoing_chat_message"
        by = 0 if inbound else owner
        state.add_event(etype, "contact", cid, at, by, [{"message": message}])
    elif kind in TAGGED_COMMON:
        body = text if kind == "note" else f"[{_tag(a)}] {text}".rstrip()
        note = _note(state, cid, owner, at, "common", {"text": body})
        state.add_event(
            "common_note_added", "contact", cid, at, owner, [{"note": {"id": note["id"]}}]
        )
    elif kind in TAGGED_SERVICE:
        service = a.subject if kind == "form_submission" and a.subject else "E-mail"
        params = {"service": service, "text": f"[{_tag(a)}] {text}".rstrip()}
        note = _note(state, cid, owner, at, "service_message", params)
        state.add_event(
            "service_note_added", "contact", cid, at, owner, [{"note": {"id": note["id"]}}]
        )
    elif kind in ("meeting", "task_completed"):
        duration = int(a.duration_s) if pd.notna(a.duration_s) else 1800
        if kind == "meeting":
            type_id, subject = 2, a.subject or text or "Встреча"
            done = a.outcome != "scheduled"
            result = f"[meeting {a.outcome}] {MEETING_RESULT[a.outcome]}" if done else None
            till = at + duration
        else:
            type_id, subject, result, till, duration = 1, a.subject or text, "Выполнено", at, 0
        created = min(at, anchor) - rng.randrange(3_600, 5 * 86_400)
        task = _task(state, cid, owner, created, type_id, subject, till, duration, result)
        state.add_event("task_added", "task", task["id"], created, owner)
        if result is not None and till <= anchor:
            state.add_event("task_completed", "task", task["id"], till, owner)
    else:  # pragma: no cover - every canonical type is handled above
        raise ValueError(f"no amoCRM rendering for activity type {kind!r}")


def _tag(a: Any) -> str:
    return f"{a.type} {a.direction}" if isinstance(a.direction, str) else str(a.type)


def _closest_tasks(state: AmoState) -> None:
    for task in state.tasks.values():
        if task["is_completed"] or task["entity_type"] != "contacts":
            continue
        contact = state.contacts.get(task["entity_id"])
        if contact is not None:
            current = contact["closest_task_at"]
            till = task["complete_till"]
            contact["closest_task_at"] = till if current is None else min(current, till)


def _plant(state: AmoState, portal: Portal, anchor: int) -> dict[str, Any]:
    """Records connector tests need: a birthday not at local midnight, a typed-in duration."""
    planted: dict[str, Any] = {}
    bday_field = FIELD_ID_BASE + 3
    for contact in state.contacts.values():
        for value in contact["custom_fields_values"] or []:
            if value["field_id"] == bday_field:
                value["values"][0]["value"] += 12 * 3600
                planted["noon_birthday_contact"] = contact["id"]
                break
        if planted:
            break
    first = int(portal.contacts["contact_id"].iloc[0])
    owner = state.contacts[first]["responsible_user_id"]
    at = anchor - 5 * 86_400
    params = {
        "uniq": "planted-call",
        "duration": "about five minutes",
        "source": "sandbox-pbx",
        "link": "",
        "phone": "",
        "call_responsible": owner,
        "call_status": 4,
        "call_result": "Duration typed by hand",
    }
    note = _note(state, first, owner, at, "call_out", params)
    state.add_event("outgoing_call", "contact", first, at, owner, [{"note": {"id": note["id"]}}])
    planted["bad_duration_call_note"] = note["id"]
    return planted


def generate_state(
    contacts: int = 2000,
    seed: int = 7,
    anchor: date | None = None,
    *,
    plant_bad_records: bool = True,
) -> AmoState:
    """Convenience: `render_truth(generate_portal(...))`."""
    from sandbox.portal import generate_portal

    portal = generate_portal(contacts, seed, anchor, portal="sandbox-amocrm")
    return render_truth(portal, plant_bad_records=plant_bad_records)
