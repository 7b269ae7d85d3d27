"""Objects, batches, properties and associations of the HubSpot sandbox, over real HTTP."""

from __future__ import annotations

import time

import pytest

from sandbox.hubspot.state import HubSpotState


def test_list_pagination_walks_every_live_contact(server, api, state) -> None:
    seen: list[str] = []
    url = f"{server.base_url}/crm/objects/2026-03/contacts"
    params: dict[str, str | int] = {"limit": 100, "properties": "email,heatsync_vip"}
    pages = 0
    while True:
        body = api.get(url, params=params).json()
        pages += 1
        seen += [r["id"] for r in body["results"]]
        for r in body["results"]:
            assert set(r["properties"]) >= {"email", "heatsync_vip", "hs_object_id", "createdate"}
            assert not r["archived"]
        if "paging" not in body:
            break
        params["after"] = body["paging"]["next"]["after"]
    assert pages == 4
    assert seen == [str(r.id) for r in state.iter_live("contacts")]
    v3 = api.get(f"{server.base_url}/crm/v3/objects/contacts", params={"limit": 5}).json()
    assert [r["id"] for r in v3["results"]] == seen[:5]
    assert set(v3["results"][0]["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }


def test_list_limit_above_100_is_a_validation_error(server, api) -> None:
    response = api.get(f"{server.base_url}/crm/v3/objects/contacts", params={"limit": 101})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert body["correlationId"]


def test_archived_listing_and_merged_ids(server, api, state) -> None:
    planted = state.meta["planted"]
    body = api.get(
        f"{server.base_url}/crm/v3/objects/contacts", params={"archived": "true", "limit": 100}
    ).json()
    ids = {r["id"] for r in body["results"]}
    assert ids == {*planted["archived_contacts"], planted["merged"]["merged_away"]}
    assert all(r["archived"] and r["archivedAt"] for r in body["results"])
    old = planted["merged"]["merged_away"]
    one = api.get(f"{server.base_url}/crm/v3/objects/contacts/{old}")
    assert one.status_code == 200 and one.json()["id"] == planted["merged"]["survivor"]
    gone = api.get(f"{server.base_url}/crm/v3/objects/contacts/{planted['archived_contacts'][0]}")
    assert gone.status_code == 404 and gone.json()["category"] == "OBJECT_NOT_FOUND"
    batch = api.post(
        f"{server.base_url}/crm/v3/objects/contacts/batch/update",
        json={"inputs": [{"id": old, "properties": {"lifecyclestage": "lead"}}]},
    )
    assert batch.status_code == 207
    assert batch.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"


def test_get_by_email_and_properties(server, api, state) -> None:
    rec = next(r for r in state.iter_live("contacts") if r.props.get("email") and r.id > 1001)
    email = rec.props["email"]
    body = api.get(
        f"{server.base_url}/crm/v3/objects/contacts/{email}",
        params={"idProperty": "email", "properties": ["phone", "lifecyclestage"]},
    ).json()
    assert body["id"] == str(rec.id)
    assert body["properties"]["lifecyclestage"] == rec.props["lifecyclestage"]
    assert "phone" in body["properties"]


def test_update_bumps_modified_dates_only_on_change(server, api, state) -> None:
    url = f"{server.base_url}/crm/v3/objects/contacts/1004"
    before = api.get(url).json()
    same = api.patch(url, json={"properties": {"firstname": before["properties"]["firstname"]}})
    assert same.json()["updatedAt"] == before["updatedAt"]
    changed = api.patch(url, json={"properties": {"firstname": "Zane"}}).json()
    assert changed["updatedAt"] > before["updatedAt"]
    assert changed["properties"]["lastmodifieddate"] == changed["updatedAt"]
    assert changed["properties"]["hs_lastmodifieddate"] == changed["updatedAt"]
    bad = api.patch(url, json={"properties": {"hs_analytics_num_page_views": "3"}})
    assert bad.status_code == 400 and "READ_ONLY_VALUE" in bad.json()["message"]


def test_batch_update_and_read_answer_207_with_per_input_errors(server, api) -> None:
    url = f"{server.base_url}/crm/v3/objects/contacts/batch"
    response = api.post(
        f"{url}/update",
        json={
            "inputs": [
                {"id": "1001", "properties": {"lifecyclestage": "customer"}},
                {"id": "999999", "properties": {"lifecyclestage": "lead"}},
                {"id": "1002", "properties": {"lifecyclestage": "warmish"}},
                {"id": "1003", "properties": {"no_such_prop": "1"}},
            ]
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert [r["id"] for r in body["results"]] == ["1001"]
    assert body["numErrors"] == 3
    by_id = {e["context"]["ids"][0]: e for e in body["errors"]}
    assert by_id["999999"]["category"] == "OBJECT_NOT_FOUND"
    assert by_id["1002"]["category"] == "VALIDATION_ERROR"
    assert "INVALID_OPTION" in by_id["1002"]["message"]
    assert "PROPERTY_DOESNT_EXIST" in by_id["1003"]["message"]
    assert all(e["status"] == "error" for e in body["errors"])

    read = api.post(
        f"{url}/read",
        json={"inputs": [{"id": "1001"}, {"id": "424242"}], "properties": ["lifecyclestage"]},
    )
    assert read.status_code == 207
    assert read.json()["results"][0]["properties"]["lifecyclestage"] == "customer"
    assert read.json()["errors"][0]["context"] == {"ids": ["424242"]}

    ok = api.post(f"{url}/read", json={"inputs": [{"id": "1001"}], "properties": []})
    assert ok.status_code == 200 and ok.json()["status"] == "COMPLETE"

    too_many = api.post(f"{url}/update", json={"inputs": [{"id": str(i)} for i in range(101)]})
    assert too_many.status_code == 400
    dupes = api.post(f"{url}/update", json={"inputs": [{"id": "1001"}, {"id": "1001"}]})
    assert dupes.status_code == 400


def test_batch_create_trace_ids_partial_success(server, api, state) -> None:
    url = f"{server.base_url}/crm/v3/objects/tasks/batch/create"
    good = {"hs_timestamp": "2026-05-02T09:00:00Z", "hs_task_subject": "Call back"}
    traced = api.post(
        url,
        json={
            "inputs": [
                {"properties": good, "objectWriteTraceId": "t-1"},
                {"properties": {**good, "hs_task_priority": "URGENT"}, "objectWriteTraceId": "t-2"},
                {"properties": {"hs_task_subject": "no due date"}, "objectWriteTraceId": "t-3"},
            ]
        },
    )
    assert traced.status_code == 207
    body = traced.json()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["t-1"]
    contexts = sorted(e["context"]["objectWriteTraceId"][0] for e in body["errors"])
    assert contexts == ["t-2", "t-3"]
    count = len(state.objects["tasks"])
    untraced = api.post(url, json={"inputs": [{"properties": good}, {"properties": {"x": "1"}}]})
    assert untraced.status_code == 400
    assert len(state.objects["tasks"]) == count  # nothing created

    owner = next(r for r in state.iter_live("contacts") if r.props.get("email"))
    dup = api.post(
        f"{server.base_url}/crm/v3/objects/contacts",
        json={"properties": {"email": owner.props["email"].upper()}},
    )
    assert dup.status_code == 409 and dup.json()["category"] == "CONFLICT"
    assert f"Existing ID: {owner.id}" in dup.json()["message"]


def test_property_types_are_validated(server, api) -> None:
    url = f"{server.base_url}/crm/properties/2026-03/contacts"
    created = api.post(
        url,
        json={
            "name": "heatsync_next_touch_due",
            "label": "Next touch due",
            "type": "date",
            "fieldType": "date",
            "groupName": "heatsync",
        },
    )
    assert created.status_code == 201
    update = f"{server.base_url}/crm/v3/objects/contacts/batch/update"
    response = api.post(
        update,
        json={
            "inputs": [
                {"id": "1001", "properties": {"heatsync_next_touch_due": "2026-05-10"}},
                {"id": "1002", "properties": {"heatsync_next_touch_due": "1778400000001"}},
                {"id": "1003", "properties": {"heatsync_vip": "maybe"}},
            ]
        },
    )
    assert response.status_code == 207
    errors = {e["context"]["ids"][0]: e["message"] for e in response.json()["errors"]}
    assert "not midnight" in errors["1002"] and "INVALID_BOOLEAN" in errors["1003"]
    assert response.json()["results"][0]["properties"]["heatsync_next_touch_due"] == "2026-05-10"


def test_property_and_group_create_conflicts(server, api, state) -> None:
    base = f"{server.base_url}/crm/v3/properties"
    definition = {
        "name": "heatsync_temperature",
        "label": "Temperature",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "heatsync",
        "options": [{"label": "Hot", "value": "hot"}, {"label": "Cold", "value": "cold"}],
    }
    first = api.post(f"{base}/contacts", json=definition)
    assert first.status_code == 201 and first.json()["options"][0]["value"] == "hot"
    again = api.post(f"{base}/contacts", json=definition)
    assert again.status_code == 409
    assert again.json()["category"] == "OBJECT_ALREADY_EXISTS"
    patched = api.patch(
        f"{base}/contacts/heatsync_temperature",
        json={
            "label": "Температура",
            "options": [*definition["options"], {"label": "Warm", "value": "warm"}],
        },
    )
    assert patched.status_code == 200 and patched.json()["label"] == "Температура"
    got = api.get(f"{base}/contacts/heatsync_temperature").json()
    assert [o["value"] for o in got["options"]] == ["hot", "cold", "warm"]
    assert api.get(f"{base}/contacts/nope").status_code == 404
    bad_group = api.post(f"{base}/tasks", json={**definition, "name": "x_key", "groupName": "nope"})
    assert bad_group.status_code == 400

    group = {"name": "heatsync", "label": "heatsync"}
    assert api.post(f"{base}/tasks/groups", json=group).status_code == 201
    assert api.post(f"{base}/tasks/groups", json=group).status_code == 409
    key = api.post(
        f"{base}/tasks",
        json={
            "name": "heatsync_task_key",
            "label": "Key",
            "type": "string",
            "fieldType": "text",
            "groupName": "heatsync",
        },
    )
    assert key.status_code == 201
    names = {p["name"] for p in api.get(f"{base}/tasks").json()["results"]}
    assert {"heatsync_task_key", "hs_task_subject", "hs_timestamp"} <= names


def test_task_with_association_204_is_visible_through_v4(server, api, state) -> None:
    created = api.post(
        f"{server.base_url}/crm/objects/2026-03/tasks",
        json={
            "properties": {
                "hs_timestamp": "2026-05-02T09:00:00.000Z",
                "hs_task_subject": "Call now",
                "hs_task_status": "NOT_STARTED",
                "hs_task_priority": "HIGH",
                "hs_task_type": "CALL",
                "hubspot_owner_id": state.owners[0]["id"],
            },
            "associations": [
                {
                    "to": {"id": "1005"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
                }
            ],
        },
    )
    assert created.status_code == 201
    task_id = created.json()["id"]
    links = api.get(f"{server.base_url}/crm/v4/objects/contacts/1005/associations/tasks").json()
    match = [r for r in links["results"] if str(r["toObjectId"]) == task_id]
    assert match and match[0]["associationTypes"] == [
        {"category": "HUBSPOT_DEFINED", "typeId": 203, "label": None}
    ]
    batch = api.post(
        f"{server.base_url}/crm/v4/associations/tasks/contacts/batch/read",
        json={"inputs": [{"id": task_id}, {"id": "1"}]},
    )
    assert batch.status_code == 207
    result = batch.json()["results"][0]
    assert result["from"] == {"id": task_id}
    assert result["to"] == [
        {
            "toObjectId": 1005,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 204, "label": None}],
        }
    ]
    assert batch.json()["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    dated = api.post(
        f"{server.base_url}/crm/associations/2026-03/tasks/contacts/batch/read",
        json={"inputs": [{"id": task_id}]},
    ).json()
    assert dated["results"][0]["to"][0]["toObjectId"] == "1005"

    wrong = api.post(
        f"{server.base_url}/crm/v3/objects/tasks",
        json={
            "properties": {"hs_timestamp": "2026-05-02T09:00:00Z"},
            "associations": [
                {
                    "to": {"id": "1005"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
                }
            ],
        },
    )
    assert wrong.status_code == 400
    too_many = api.post(
        f"{server.base_url}/crm/v4/associations/tasks/contacts/batch/read",
        json={"inputs": [{"id": str(i)} for i in range(1001)]},
    )
    assert too_many.status_code == 400


def test_v3_association_put_and_list(server, api) -> None:
    deals = api.get(f"{server.base_url}/crm/v3/objects/deals", params={"limit": 1}).json()
    deal_id = deals["results"][0]["id"]
    put = api.put(
        f"{server.base_url}/crm/v3/objects/deals/{deal_id}/associations/contacts/1010/deal_to_contact"
    )
    assert put.status_code == 200
    listed = api.get(f"{server.base_url}/crm/v3/objects/contacts/1010/associations/deals").json()
    assert {"id": deal_id, "type": "contact_to_deal"} in listed["results"]


def test_owners_pipelines_account(server, api) -> None:
    owners = api.get(f"{server.base_url}/crm/v3/owners", params={"limit": 5}).json()
    assert len(owners["results"]) == 5 and owners["paging"]["next"]["after"] == "5"
    rest = api.get(f"{server.base_url}/crm/v3/owners", params={"limit": 5, "after": 5}).json()
    assert len(rest["results"]) == 3 and "paging" not in rest
    pipelines = api.get(f"{server.base_url}/crm/pipelines/2026-03/deals").json()["results"]
    stages = {s["id"]: s["metadata"] for s in pipelines[0]["stages"]}
    assert stages["contractsent"] == {"isClosed": "false", "probability": "0.9"}
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    account = api.get(f"{server.base_url}/account-info/v3/details").json()
    assert account["timeZone"] == "Europe/Riga" and account["companyCurrency"] == "EUR"
    assert account["utcOffset"] in ("+02:00", "+03:00") and isinstance(account["portalId"], int)


def test_state_persists_through_the_server(tmp_path, state) -> None:
    import requests

    from sandbox.hubspot.server import SandboxOptions, SandboxServer

    path = tmp_path / "hubspot.json"
    with SandboxServer(
        state, SandboxOptions(token="t"), state_path=path, persist_debounce_s=0.2
    ) as srv:
        headers = {"Authorization": "Bearer t"}
        url = f"{srv.base_url}/crm/v3/objects/contacts/1001"
        assert requests.patch(
            url, json={"properties": {"firstname": "Persisted"}}, headers=headers
        ).ok
        deadline = time.time() + 3
        while time.time() < deadline:
            if (
                path.exists()
                and HubSpotState.load(path).get("contacts", 1001).props["firstname"] == "Persisted"
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("state was not flushed within the debounce window")
        assert requests.patch(url, json={"properties": {"lastname": "OnStop"}}, headers=headers).ok
    loaded = HubSpotState.load(path)
    assert loaded.get("contacts", 1001).props["lastname"] == "OnStop"
