"""Rendering the neutral truth into HubSpot's shapes, validation rules and JSON persistence."""

from __future__ import annotations

import json
import re
import time
from datetime import date

import pytest

from sandbox.hubspot import schema
from sandbox.hubspot.state import (
    HubSpotState,
    StatePersister,
    normalize_value,
    render_truth,
)
from sandbox.portal import generate_portal

ANCHOR = date(2026, 5, 1)
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(scope="module")
def portal():
    return generate_portal(300, seed=11, anchor=ANCHOR)


@pytest.fixture(scope="module")
def state(portal):
    return render_truth(portal)


def test_objects_are_hubspot_shaped(state, portal) -> None:
    live = list(state.iter_live("contacts"))
    assert len(live) == len(portal.contacts) + 1  # + the planted bad-createdate contact
    for obj_type in ("contacts", "deals", "calls", "emails", "meetings", "notes", "tasks"):
        for rec in state.objects[obj_type].values():
            assert all(isinstance(v, str) for v in rec.props.values())
            assert ISO_MS.match(rec.created_at) and ISO_MS.match(rec.updated_at)
            assert rec.props["hs_object_id"] == str(rec.id)
            assert ISO_MS.match(rec.props["hs_lastmodifieddate"])
    contact = state.get("contacts", portal.contacts["contact_id"].iloc[1])
    assert contact.props["lastmodifieddate"] == contact.props["hs_lastmodifieddate"]


def test_rollups_and_optout(state, portal) -> None:
    acts = portal.activities
    views = (
        acts[(acts["type"] == "page_view")]
        .groupby("contact_id")["occurred_at"]
        .agg(["count", "max"])
    )
    cid = views.index[0]
    rec = state.get("contacts", cid)
    assert rec.props["hs_analytics_num_page_views"] == str(views.loc[cid, "count"])
    forms = acts[acts["type"] == "form_submission"].sort_values("occurred_at")
    last = forms.groupby("contact_id").last()
    cid = last.index[0]
    rec = state.get("contacts", cid)
    assert rec.props["message"] == last.loc[cid, "text"]
    assert rec.props["recent_conversion_event_name"] == last.loc[cid, "subject"]
    dnc = portal.contacts.set_index("contact_id")["do_not_contact"]
    for cid, flag in dnc.items():
        assert state.get("contacts", cid).props["hs_email_optout"] == ("true" if flag else "false")


def test_engagements_notes_and_associations(state, portal) -> None:
    acts = portal.activities.set_index("activity_id")
    complaint = acts[acts["type"] == "complaint"].iloc[0]
    note = state.get("notes", complaint.name)
    assert note.props["hs_note_body"].startswith("[complaint] ")
    sms = acts[acts["type"] == "sms"].iloc[0]
    assert state.get("notes", sms.name).props["hs_note_body"].startswith(f"[sms {sms.direction}] ")
    assert state.associations("notes", note.id, "contacts") == {
        int(complaint.contact_id): [("HUBSPOT_DEFINED", 202)]
    }
    back = state.associations("contacts", int(complaint.contact_id), "notes")
    assert back[note.id] == [("HUBSPOT_DEFINED", 201)]
    call = acts[(acts["type"] == "call") & (acts["outcome"] == "busy")].iloc[0]
    rec = state.get("calls", call.name)
    assert rec.props["hs_call_status"] == "BUSY"
    assert rec.props["hs_call_disposition"] == schema.CALL_DISPOSITIONS["busy"]
    deal = portal.deals[portal.deals["status"] == "won"].iloc[0]
    drec = state.get("deals", deal.deal_id)
    assert drec.props["dealstage"] == "closedwon"
    assert state.associations("deals", drec.id, "contacts") == {
        int(deal.contact_id): [("HUBSPOT_DEFINED", 3)]
    }
    # rolled-up types and unsubscribes have no objects
    view = acts[acts["type"] == "page_view"].iloc[0]
    assert all(state.get(t, view.name) is None for t in schema.ENGAGEMENT_TYPES)


def test_planted_records(state) -> None:
    planted = state.meta["planted"]
    assert (
        state.get("contacts", planted["bad_createdate_contact"]).props["createdate"] == "not-a-date"
    )
    assert (
        state.get("calls", planted["bad_duration_call"]).props["hs_call_duration"]
        == "about five minutes"
    )
    assert all(state.get("contacts", i).archived for i in planted["archived_contacts"])
    merged = planted["merged"]
    assert state.get("contacts", merged["merged_away"]).archived
    survivor = state.get("contacts", merged["survivor"])
    assert survivor.props["hs_merged_object_ids"] == merged["merged_away"]


@pytest.mark.parametrize(
    ("type_", "raw", "stored", "code"),
    [
        ("number", "12.5", "12.5", None),
        ("number", 7, "7", None),
        ("number", "abc", None, "INVALID_INTEGER"),
        ("bool", "TRUE", "true", None),
        ("bool", "yes", None, "INVALID_BOOLEAN"),
        ("datetime", "1714557600000", "2024-05-01T10:00:00.000Z", None),
        ("datetime", "2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00.000Z", None),
        ("datetime", "yesterday", None, "INVALID_DATETIME"),
        ("date", "2024-05-01", "2024-05-01", None),
        ("date", "1714521600000", "2024-05-01", None),
        ("date", "1714557600000", None, "INVALID_DATE"),
        ("enumeration", "hot", "hot", None),
        ("enumeration", "tepid", None, "INVALID_OPTION"),
        ("string", "", None, None),
    ],
)
def test_value_validation(type_, raw, stored, code) -> None:
    definition = schema.property_definition(
        "p", "P", type_, "select", "g", [schema.option("hot"), schema.option("cold")]
    )
    value, error = normalize_value(definition, raw)
    assert value == stored
    assert (error or {}).get("error") == code


def test_save_load_round_trip(tmp_path, state) -> None:
    path = tmp_path / "sub" / "hubspot.json"
    state.save(path)
    loaded = HubSpotState.load(path)
    assert loaded.to_json() == json.loads(json.dumps(state.to_json()))
    assert loaded.email_index == state.email_index
    assert loaded.merged_into == state.merged_into
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("how", ["from_json", "copy"])
def test_copies_share_nothing_with_the_original(state, how) -> None:
    # a private original (a JSON text round trip cannot share anything with the module's state)
    original = HubSpotState.from_json(json.loads(json.dumps(state.to_json())))
    before = json.dumps(original.to_json(), sort_keys=True)
    dup = original.copy() if how == "copy" else HubSpotState.from_json(original.to_json())
    assert json.dumps(dup.to_json(), sort_keys=True) == before
    contact_id = next(iter(original.iter_live("contacts"))).id
    call_id = next(iter(original.iter_live("calls"))).id

    def props(of: HubSpotState) -> dict[str, str]:
        rec = of.get("contacts", contact_id)
        assert rec is not None
        return rec.props

    # mutate every nested structure of the copy...
    props(dup)["firstname"] = "Changed"
    dup.account["timeZone"] = "Asia/Tokyo"
    dup.owners[0]["email"] = "changed@example.com"
    dup.pipelines["deals"][0]["stages"][0]["label"] = "Changed"
    dup.properties["contacts"]["firstname"]["label"] = "Changed"
    dup.properties["contacts"]["hubspot_owner_id"]["options"].clear()
    dup.groups["contacts"]["contactinformation"]["label"] = "Changed"
    dup.meta["planted"]["archived_contacts"].append("1")
    dup.associate("calls", call_id, "contacts", contact_id, 194)
    dup.add("contacts", {"email": "new@example.com"}, 1_700_000_000_000)
    # ...the original is untouched
    assert json.dumps(original.to_json(), sort_keys=True) == before
    assert "new@example.com" not in original.email_index
    # and the other way round
    props(original)["lastname"] = "Original-side change"
    original.account["timeZone"] = "America/Chicago"
    assert props(dup).get("lastname") != "Original-side change"
    assert dup.account["timeZone"] == "Asia/Tokyo"


def test_persister_debounces_and_flushes_on_close(tmp_path) -> None:
    state = HubSpotState()
    path = tmp_path / "s.json"
    persister = StatePersister(state, path, debounce_s=0.2)
    try:
        with state.lock:
            state.add("contacts", {"email": "a@example.com"}, 1_700_000_000_000)
        deadline = time.time() + 3
        while not path.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert path.exists()
        with state.lock:
            state.add("contacts", {"email": "b@example.com"}, 1_700_000_000_000)
    finally:
        persister.close()
    loaded = HubSpotState.load(path)
    assert sorted(loaded.email_index) == ["a@example.com", "b@example.com"]
