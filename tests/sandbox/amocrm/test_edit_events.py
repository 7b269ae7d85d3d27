"""Contact field changes in the amoCRM sandbox leave `custom_field_value_changed` events shaped
as the reference describes (`GET /api/v4/events`), whoever made them: the API's user, a rep in
the interface (`edit_as_user`) or another integration (`edit_as_integration`)."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.amocrm.account import ADMIN_USER_ID
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState

POSITION = 100_003  # text
SOURCE = 100_005  # select
EVENT_KEYS = {
    "id",
    "type",
    "entity_id",
    "entity_type",
    "created_by",
    "created_at",
    "value_after",
    "value_before",
    "account_id",
    "_embedded",
    "_links",
}


def _events(server: AmoSandboxServer, api: requests.Session, params: list) -> list[dict]:
    resp = api.get(f"{server.base_url}/api/v4/events", params=params)
    if resp.status_code == 204:
        return []
    assert resp.status_code == 200, resp.text
    return resp.json()["_embedded"]["events"]


def _rep(state: AmoState) -> int:
    return next(u["id"] for u in state.users if u["id"] != ADMIN_USER_ID)


def _contact(state: AmoState) -> int:
    return min(state.contacts)


def test_edits_leave_events_with_who_when_before_after(amo_server, amo_api, amo_state) -> None:
    cid, rep = _contact(amo_state), _rep(amo_state)
    start = int(time.time())
    resp = amo_api.patch(
        f"{amo_server.base_url}/api/v4/contacts",
        json=[
            {
                "id": cid,
                "custom_fields_values": [{"field_id": POSITION, "values": [{"value": "CTO"}]}],
            }
        ],
    )
    assert resp.status_code == 200
    amo_server.edit_as_user(cid, POSITION, "CEO", rep, at_s=start + 5)
    amo_server.edit_as_integration(cid, POSITION, None, at_s=start + 6)

    events = _events(
        amo_server,
        amo_api,
        [
            ("filter[type][]", "custom_field_value_changed"),
            ("filter[entity]", "contact"),
            ("filter[entity_id][]", cid),
            ("filter[created_at][from]", start),
        ],
    )

    assert [e["created_by"] for e in events] == [0, rep, ADMIN_USER_ID]  # newest first
    assert [e["created_at"] for e in events][:2] == [start + 6, start + 5]
    for event in events:
        assert set(event) == EVENT_KEYS
        assert isinstance(event["id"], str)
        assert (event["type"], event["entity_type"], event["entity_id"]) == (
            "custom_field_value_changed",
            "contact",
            cid,
        )
        assert event["_embedded"]["entity"]["id"] == cid
    cleared, by_rep, by_api = events
    assert by_api["value_after"] == [
        {
            "custom_field_value": {
                "field_id": POSITION,
                "field_type": 1,
                "enum_id": None,
                "text": "CTO",
            }
        }
    ]
    assert by_rep["value_before"] == by_api["value_after"]
    assert by_rep["value_after"][0]["custom_field_value"]["text"] == "CEO"
    assert cleared["value_after"] == [] and cleared["value_before"] == by_rep["value_after"]
    contact = amo_state.contacts[cid]
    assert (contact["updated_at"], contact["updated_by"]) == (start + 6, 0)


def test_select_values_carry_the_enum_id(amo_server, amo_api, amo_state) -> None:
    cid = _contact(amo_state)
    definition = amo_state.field("contacts", field_id=SOURCE)
    enum = definition["enums"][1]
    amo_server.edit_as_user(cid, SOURCE, enum["value"], _rep(amo_state))
    (event,) = _events(
        amo_server,
        amo_api,
        [
            ("filter[type][]", f"custom_field_{SOURCE}_value_changed"),
            ("filter[entity]", "contact"),
            ("filter[entity_id][]", cid),
        ],
    )
    value = event["value_after"][0]["custom_field_value"]
    assert (value["field_id"], value["enum_id"], value["text"]) == (
        SOURCE,
        enum["id"],
        enum["value"],
    )


def test_event_filters_follow_amocrm_rules(amo_server, amo_api, amo_state) -> None:
    cid = _contact(amo_state)
    amo_server.edit_as_user(cid, POSITION, "CEO", _rep(amo_state))
    amo_server.edit_as_user(
        cid,
        SOURCE,
        amo_state.field("contacts", field_id=SOURCE)["enums"][0]["value"],
        _rep(amo_state),
    )
    only = _events(
        amo_server,
        amo_api,
        [
            ("filter[type][]", f"custom_field_{POSITION}_value_changed"),
            ("filter[entity]", "contact"),
            ("filter[entity_id][]", cid),
        ],
    )
    assert [e["value_after"][0]["custom_field_value"]["field_id"] for e in only] == [POSITION]
    url = f"{amo_server.base_url}/api/v4/events"
    mixed = [
        ("filter[type][]", f"custom_field_{POSITION}_value_changed"),
        ("filter[type][]", "lead_added"),
    ]
    assert amo_api.get(url, params=mixed).status_code == 400
    eleven = [("filter[entity]", "contact"), *[("filter[entity_id][]", i) for i in range(1, 12)]]
    assert amo_api.get(url, params=eleven).status_code == 400
    assert amo_api.get(url, params=[("filter[entity_id][]", cid)]).status_code == 400
    assert amo_api.get(url, params=[("limit", 101)]).status_code == 400


def test_interface_cannot_edit_api_only_fields(amo_server, amo_state) -> None:
    amo_state.field("contacts", field_id=POSITION)["is_api_only"] = True
    with pytest.raises(PermissionError):
        amo_server.edit_as_user(_contact(amo_state), POSITION, "CEO", _rep(amo_state))
    amo_server.edit_as_integration(_contact(amo_state), POSITION, "CEO", 0)
