"""Property history in the HubSpot sandbox (`propertiesWithHistory`), over real HTTP: the shapes
of HubSpot's `ValueWithTimestamp`, the source of each change and the 50-record cap."""

from __future__ import annotations

from sandbox.hubspot.auth import PRIVATE_APP_ID
from sandbox.hubspot.state import HubSpotState, parse_ms

PROP = "lifecyclestage"
ENTRY_KEYS = {"value", "timestamp", "sourceType", "sourceId", "sourceLabel", "updatedByUserId"}


def _contact_ids(state: HubSpotState, n: int) -> list[str]:
    return [str(i) for i in state.order["contacts"][:n]]


def test_get_with_history_lists_versions_newest_first_with_sources(server, api, state) -> None:
    cid = _contact_ids(state, 1)[0]
    url = f"{server.base_url}/crm/v3/objects/contacts/{cid}"
    before = api.get(url, params={"properties": "lastmodifieddate"}).json()
    old_value = state.get("contacts", cid).props[PROP]
    resp = api.patch(url, json={"properties": {PROP: "opportunity"}})
    assert resp.status_code == 200
    server.edit_as_user(cid, PROP, "customer", 1_000_007)
    server.edit_as_integration(cid, PROP, "evangelist", 555, label="Other app")

    body = api.get(url, params={"propertiesWithHistory": PROP}).json()

    versions = body["propertiesWithHistory"][PROP]
    assert [v["value"] for v in versions] == ["evangelist", "customer", "opportunity", old_value]
    assert all(
        set(v) <= ENTRY_KEYS and {"value", "timestamp", "sourceType"} <= set(v) for v in versions
    )
    stamps = [parse_ms(v["timestamp"]) for v in versions]
    assert stamps == sorted(stamps, reverse=True)
    assert versions[0] == {
        "value": "evangelist",
        "timestamp": versions[0]["timestamp"],
        "sourceType": "INTEGRATION",
        "sourceId": "555",
        "sourceLabel": "Other app",
    }
    assert {k: versions[1][k] for k in ("sourceType", "sourceId", "updatedByUserId")} == {
        "sourceType": "CRM_UI",
        "sourceId": "userId:1000007",
        "updatedByUserId": 1_000_007,
    }
    assert versions[2]["sourceType"] == "INTEGRATION"
    assert versions[2]["sourceId"] == str(PRIVATE_APP_ID)
    assert "updatedByUserId" not in versions[2]
    after = api.get(url, params={"properties": "lastmodifieddate"}).json()
    assert after["properties"]["lastmodifieddate"] == versions[0]["timestamp"]
    assert after["properties"]["lastmodifieddate"] > before["properties"]["lastmodifieddate"]


def test_edits_are_seen_by_incremental_search(server, api, state) -> None:
    cid = _contact_ids(state, 1)[0]
    server.edit_as_user(cid, PROP, "customer", 1_000_007)
    stamp = state.get("contacts", cid).props["lastmodifieddate"]
    body = api.post(
        f"{server.base_url}/crm/v3/objects/contacts/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": str(parse_ms(stamp)),
                        }
                    ]
                }
            ],
            "limit": 10,
        },
    ).json()
    assert cid in [r["id"] for r in body["results"]]


def test_batch_read_with_history_on_both_path_styles(server, api, state) -> None:
    ids = _contact_ids(state, 3)
    current = state.get("contacts", ids[0]).props.get(PROP)
    server.edit_as_user(ids[0], PROP, "other" if current != "other" else "lead", 1_000_007)
    for path in ("/crm/v3/objects/contacts/batch/read", "/crm/objects/2026-03/contacts/batch/read"):
        body = api.post(
            server.base_url + path,
            json={
                "inputs": [{"id": i} for i in ids],
                "properties": ["email"],
                "propertiesWithHistory": [PROP, "heatsync_vip"],
            },
        ).json()
        assert [r["id"] for r in body["results"]] == ids
        first = body["results"][0]
        assert set(first["propertiesWithHistory"]) == {PROP, "heatsync_vip"}
        assert first["propertiesWithHistory"][PROP][0]["sourceType"] == "CRM_UI"
        seeded = body["results"][1]["propertiesWithHistory"][PROP]
        assert len(seeded) == 1 and seeded[0]["sourceType"] == "IMPORT"


def test_history_caps_batch_read_and_list_at_fifty(server, api, state) -> None:
    ids = _contact_ids(state, 51)
    url = f"{server.base_url}/crm/v3/objects/contacts/batch/read"
    inputs = [{"id": i} for i in ids]
    too_many = api.post(url, json={"inputs": inputs, "propertiesWithHistory": [PROP]})
    assert too_many.status_code == 400
    assert too_many.json()["category"] == "VALIDATION_ERROR"
    fifty = api.post(url, json={"inputs": inputs[:50], "propertiesWithHistory": [PROP]})
    assert fifty.status_code == 200 and len(fifty.json()["results"]) == 50
    assert api.post(url, json={"inputs": inputs, "properties": [PROP]}).status_code == 200
    listing = f"{server.base_url}/crm/v3/objects/contacts"
    assert api.get(listing, params={"limit": 51, "propertiesWithHistory": PROP}).status_code == 400
    page = api.get(listing, params={"limit": 50, "propertiesWithHistory": PROP}).json()
    assert len(page["results"]) == 50 and PROP in page["results"][0]["propertiesWithHistory"]


def test_created_records_have_only_the_api_version(server, api) -> None:
    created = api.post(
        f"{server.base_url}/crm/v3/objects/contacts",
        json={"properties": {"email": "history@example.com", PROP: "lead"}},
    ).json()
    body = api.get(
        f"{server.base_url}/crm/v3/objects/contacts/{created['id']}",
        params={"propertiesWithHistory": f"{PROP},phone"},
    ).json()
    assert body["propertiesWithHistory"]["phone"] == []
    (only,) = body["propertiesWithHistory"][PROP]
    assert only["value"] == "lead" and only["sourceId"] == str(PRIVATE_APP_ID)


def test_history_survives_the_state_file(server, state) -> None:
    cid = _contact_ids(state, 1)[0]
    server.edit_as_user(cid, PROP, "other", 1_000_007)
    server.edit_as_user(cid, PROP, "lead", 1_000_007)
    with state.lock:
        copy = HubSpotState.from_json(state.to_json())
    assert copy.history["contacts"][int(cid)][PROP][0]["sourceId"] == "userId:1000007"
