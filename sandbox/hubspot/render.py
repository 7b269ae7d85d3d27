"""Rendering a neutral `sandbox.portal.Portal` into the sandbox's HubSpot state.

`render_truth` maps the truth's contacts, activities and deals onto HubSpot's objects, roll-up
properties and associations (see sandbox/README.md for the mapping) and, for connector tests,
plants a few bad, archived and merged records; `generate_state` generates and renders in one go.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from sandbox.hubspot import schema
from sandbox.hubspot.store import HubSpotState
from sandbox.hubspot.values import iso_ms
from sandbox.portal import Portal

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
