"""Writing to the amoCRM sandbox: PATCH contacts (multitext untouched unless sent, whole-batch
validation), custom field creation, tasks without idempotency, and answers lost after a write."""

from __future__ import annotations

import copy
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState

FIELDS = [
    {
        "name": "Температура",
        "type": "select",
        "code": "HEATSYNC_TEMPERATURE",
        "is_api_only": True,
        "enums": [
            {"value": "cold", "sort": 1, "code": "cold"},
            {"value": "warm", "sort": 2, "code": "warm"},
            {"value": "hot", "sort": 3, "code": "hot"},
        ],
    },
    {"name": "Касаний", "type": "numeric", "code": "HEATSYNC_TOUCHES", "is_api_only": True},
]


def _with_phones(state: AmoState) -> dict:
    for contact in state.contacts.values():
        codes = {f["field_code"] for f in contact["custom_fields_values"] or []}
        if {"PHONE", "EMAIL"} <= codes:
            return contact
    raise AssertionError("no contact with phone and e-mail")


def _create_fields(srv: AmoSandboxServer, api: requests.Session) -> dict[str, dict]:
    answer = api.post(f"{srv.base_url}/api/v4/contacts/custom_fields", json=FIELDS, timeout=5)
    assert answer.status_code == 200, answer.text
    return {f["code"]: f for f in answer.json()["_embedded"]["custom_fields"]}


def test_custom_fields_created_with_code_enums_and_api_only(amo_server, amo_api) -> None:
    created = _create_fields(amo_server, amo_api)
    temp = created["HEATSYNC_TEMPERATURE"]
    assert temp["is_api_only"] is True and temp["type"] == "select"
    assert [e["value"] for e in temp["enums"]] == ["cold", "warm", "hot"]
    assert all(isinstance(e["id"], int) for e in temp["enums"])
    listed = amo_api.get(f"{amo_server.base_url}/api/v4/contacts/custom_fields", timeout=5).json()
    assert listed["_total_items"] == 9
    again = amo_api.post(
        f"{amo_server.base_url}/api/v4/contacts/custom_fields", json=FIELDS[:1], timeout=5
    )
    assert again.status_code == 400
    errors = again.json()["validation-errors"][0]["errors"]
    assert errors[0]["path"] == "code"
    no_enums = [{"name": "X", "type": "select"}]
    bad = amo_api.post(
        f"{amo_server.base_url}/api/v4/contacts/custom_fields", json=no_enums, timeout=5
    )
    assert bad.status_code == 400
    leads = amo_api.get(f"{amo_server.base_url}/api/v4/leads/custom_fields", timeout=5)
    assert leads.status_code == 204


def test_patch_leaves_phones_and_emails_alone(amo_server, amo_api) -> None:
    created = _create_fields(amo_server, amo_api)
    contact = _with_phones(amo_server.state)
    before = copy.deepcopy(contact["custom_fields_values"])
    body = [
        {
            "id": contact["id"],
            "custom_fields_values": [
                {"field_code": "HEATSYNC_TEMPERATURE", "values": [{"enum_code": "hot"}]},
                {"field_id": created["HEATSYNC_TOUCHES"]["id"], "values": [{"value": "3"}]},
            ],
        }
    ]
    answer = amo_api.patch(f"{amo_server.base_url}/api/v4/contacts", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["_embedded"]["contacts"][0]["id"] == contact["id"]
    after = amo_api.get(f"{amo_server.base_url}/api/v4/contacts/{contact['id']}", timeout=5).json()
    by_code = {f["field_code"]: f for f in after["custom_fields_values"]}
    assert by_code["HEATSYNC_TEMPERATURE"]["values"][0]["value"] == "hot"
    assert by_code["HEATSYNC_TOUCHES"]["values"] == [{"value": "3"}]
    kept = [
        f for f in after["custom_fields_values"] if f["field_id"] in {b["field_id"] for b in before}
    ]
    assert kept == before
    # sending a multitext field replaces its whole value set
    phone_only = [
        {
            "id": contact["id"],
            "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": "+371 20000000", "enum_code": "MOB"}]}
            ],
        }
    ]
    assert amo_api.patch(f"{amo_server.base_url}/api/v4/contacts", json=phone_only, timeout=5).ok
    phones = next(
        f
        for f in amo_server.state.contacts[contact["id"]]["custom_fields_values"]
        if f["field_code"] == "PHONE"
    )
    assert phones["values"] == [
        {"value": "+371 20000000", "enum_id": phones["values"][0]["enum_id"], "enum": "MOB"}
    ]
    # the API user's own change is an event (a connector must not read it as customer activity)
    events = amo_api.get(
        f"{amo_server.base_url}/api/v4/events?filter[type]=custom_field_value_changed", timeout=5
    ).json()["_embedded"]["events"]
    assert {e["created_by"] for e in events} == {amo_server.state.api_user_id}
    assert len(events) == 3


def test_one_invalid_element_rejects_the_whole_batch(amo_server, amo_api) -> None:
    _create_fields(amo_server, amo_api)
    ids = sorted(amo_server.state.contacts)[:3]
    snapshot = copy.deepcopy([amo_server.state.contacts[i] for i in ids])
    events = len(amo_server.state.events)
    body = [
        {
            "id": ids[0],
            "custom_fields_values": [
                {"field_code": "HEATSYNC_TEMPERATURE", "values": [{"value": "warm"}]}
            ],
        },
        {
            "id": ids[1],
            "custom_fields_values": [
                {"field_code": "HEATSYNC_TEMPERATURE", "values": [{"value": "lukewarm"}]}
            ],
        },
        {
            "id": ids[2],
            "request_id": "r-2",
            "custom_fields_values": [{"field_id": 1, "values": [{"value": "x"}]}],
        },
    ]
    answer = amo_api.patch(f"{amo_server.base_url}/api/v4/contacts", json=body, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 400 and problem["detail"] == "Request validation failed"
    failures = {e["request_id"]: e["errors"][0] for e in problem["validation-errors"]}
    assert set(failures) == {"1", "r-2"}
    assert failures["1"]["code"] == "NotSupportedChoice"
    assert failures["1"]["path"] == "custom_fields_values.0.values.0.value"
    assert failures["r-2"]["path"] == "custom_fields_values.0.field_id"
    assert [amo_server.state.contacts[i] for i in ids] == snapshot
    assert len(amo_server.state.events) == events
    too_big = [{"id": ids[0]}] * 51
    assert (
        amo_api.patch(f"{amo_server.base_url}/api/v4/contacts", json=too_big, timeout=5).status_code
        == 400
    )
    unknown = amo_api.patch(f"{amo_server.base_url}/api/v4/contacts", json=[{"id": 1}], timeout=5)
    assert unknown.status_code == 400


def test_birthday_written_is_stored_at_local_midnight(amo_server, amo_api) -> None:
    contact = _with_phones(amo_server.state)
    utc_midnight = int(datetime(1990, 5, 2, tzinfo=ZoneInfo("UTC")).timestamp())
    body = {"custom_fields_values": [{"field_id": 100004, "values": [{"value": utc_midnight}]}]}
    answer = amo_api.patch(
        f"{amo_server.base_url}/api/v4/contacts/{contact['id']}", json=body, timeout=5
    )
    assert answer.status_code == 200 and answer.json()["id"] == contact["id"]
    field = next(f for f in contact["custom_fields_values"] if f["field_id"] == 100004)
    stored = datetime.fromtimestamp(field["values"][0]["value"], ZoneInfo("Europe/Riga"))
    assert (stored.year, stored.month, stored.day, stored.hour) == (1990, 5, 2, 0)
    assert field["values"][0]["value"] != utc_midnight


def test_task_creates_are_not_idempotent(amo_server, amo_api) -> None:
    contact = _with_phones(amo_server.state)
    task = {
        "text": "Позвонить клиенту [hs:abc123]",
        "complete_till": 1_900_000_000,
        "entity_type": "contacts",
        "entity_id": contact["id"],
        "task_type_id": 1,
        "responsible_user_id": contact["responsible_user_id"],
    }
    url = f"{amo_server.base_url}/api/v4/tasks"
    first = amo_api.post(url, json=[task], timeout=5)
    second = amo_api.post(url, json=[{**task, "request_id": "again"}], timeout=5)
    assert first.status_code == second.status_code == 200
    ids = [
        first.json()["_embedded"]["tasks"][0]["id"],
        second.json()["_embedded"]["tasks"][0]["id"],
    ]
    assert ids[0] != ids[1] and second.json()["_embedded"]["tasks"][0]["request_id"] == "again"
    found = amo_api.get(
        f"{url}?filter[entity_type]=contacts&filter[entity_id][]={contact['id']}&filter[is_completed]=0",
        timeout=5,
    ).json()["_embedded"]["tasks"]
    assert sum(t["text"] == task["text"] for t in found) == 2
    assert amo_server.state.contacts[contact["id"]]["closest_task_at"] is not None
    bad = amo_api.post(url, json=[task, {**task, "complete_till": None}], timeout=5)
    assert bad.status_code == 400 and bad.json()["validation-errors"][0]["request_id"] == "1"
    assert amo_api.post(url, json=[{**task, "task_type_id": 3}], timeout=5).status_code == 400
    done = amo_api.patch(
        f"{url}/{ids[0]}", json={"is_completed": True, "result": {"text": "ok"}}, timeout=5
    )
    assert done.status_code == 200 and amo_server.state.tasks[ids[0]]["is_completed"] is True


def test_drop_after_apply_changes_state_but_loses_the_answer(amo_state: AmoState) -> None:
    options = AmoOptions(rate_per_second=1000, drop_after_apply_rate=1.0)
    contact = _with_phones(amo_state)
    with AmoSandboxServer(amo_state, options) as srv, requests.Session() as api:
        api.headers["Authorization"] = f"Bearer {srv.long_lived_token}"
        task = {
            "text": "Позвонить",
            "complete_till": 1_900_000_000,
            "entity_type": "contacts",
            "entity_id": contact["id"],
        }
        before = len(srv.state.tasks)
        with pytest.raises(requests.ConnectionError):
            api.post(f"{srv.base_url}/api/v4/tasks", json=[task], timeout=5)
        assert len(srv.state.tasks) == before + 1
        body = [{"id": contact["id"], "first_name": "Изменено"}]
        with pytest.raises(requests.ConnectionError):
            api.patch(f"{srv.base_url}/api/v4/contacts", json=body, timeout=5)
        assert srv.state.contacts[contact["id"]]["first_name"] == "Изменено"
        # reads are never dropped by this fault; failed writes are answered
        assert api.get(f"{srv.base_url}/api/v4/tasks?limit=1", timeout=5).status_code == 200
        assert api.post(f"{srv.base_url}/api/v4/tasks", json=[{}], timeout=5).status_code == 400
        stats = srv.stats()
    assert stats["dropped_after_apply"] == 2 and stats["writes"] == 3 and stats["dropped"] == 0


def test_patch_custom_field_enums(amo_server, amo_api) -> None:
    created = _create_fields(amo_server, amo_api)
    temp = created["HEATSYNC_TEMPERATURE"]
    contact = _with_phones(amo_server.state)
    url = f"{amo_server.base_url}/api/v4/contacts"
    body = [
        {
            "id": contact["id"],
            "custom_fields_values": [
                {"field_code": "HEATSYNC_TEMPERATURE", "values": [{"enum_code": "cold"}]}
            ],
        }
    ]
    assert amo_api.patch(url, json=body, timeout=5).status_code == 200
    _cold, warm, hot = temp["enums"]
    enums = [
        {"id": warm["id"], "value": "тёплый", "sort": 2, "code": "warm"},
        {"id": hot["id"], "value": "hot", "sort": 3, "code": "hot"},
        {"value": "burning", "sort": 4, "code": "burning"},
    ]
    answer = amo_api.patch(
        f"{url}/custom_fields/{temp['id']}", json={"enums": enums, "name": "Temp"}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    field = answer.json()
    assert field["name"] == "Temp" and field["code"] == "HEATSYNC_TEMPERATURE"
    assert [e["value"] for e in field["enums"]] == ["тёплый", "hot", "burning"]
    assert field["enums"][0]["id"] == warm["id"] and field["enums"][2]["id"] > hot["id"]
    # the deleted enum's value is gone from the contact
    codes = {
        f["field_code"] for f in amo_server.state.contacts[contact["id"]]["custom_fields_values"]
    }
    assert "HEATSYNC_TEMPERATURE" not in codes
    bad = amo_api.patch(
        f"{url}/custom_fields", json=[{"id": temp["id"], "type": "text"}], timeout=5
    )
    assert bad.status_code == 400
    missing = amo_api.patch(f"{url}/custom_fields", json=[{"id": 1, "name": "x"}], timeout=5)
    assert missing.status_code == 400
