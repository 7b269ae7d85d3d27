"""Reading the amoCRM sandbox: account, HAL pagination to the 204, filters, events, notes, leads."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import requests

from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import LOST_STATUS_ID, WON_STATUS_ID


def _all(api: requests.Session, url: str) -> tuple[list[dict], list[int]]:
    """Follow _links.next until a 204; (items, status codes)."""
    items: list[dict] = []
    codes: list[int] = []
    next_url: str | None = url
    while next_url:
        answer = api.get(next_url, timeout=5)
        codes.append(answer.status_code)
        if answer.status_code == 204:
            assert answer.content == b"" and "Content-Type" not in answer.headers
            break
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("application/hal+json")
        body = answer.json()
        key = next(iter(body["_embedded"]))
        items.extend(body["_embedded"][key])
        next_url = body["_links"].get("next", {}).get("href")
    return items, codes


def test_account_time_zone_and_task_types(amo_server: AmoSandboxServer, amo_api) -> None:
    plain = amo_api.get(f"{amo_server.base_url}/api/v4/account", timeout=5).json()
    assert plain["id"] == amo_server.state.account_id and "_embedded" not in plain
    assert plain["currency"] == "EUR" and plain["subdomain"]
    url = f"{amo_server.base_url}/api/v4/account?with=task_types,datetime_settings"
    body = amo_api.get(url, timeout=5).json()
    settings = body["_embedded"]["datetime_settings"]
    assert settings["timezone"] == "Europe/Riga" and settings["timezone_offset"] in (
        "+02:00",
        "+03:00",
    )
    types = {t["id"]: t for t in body["_embedded"]["task_types"]}
    assert types[1]["code"] == "FOLLOW_UP" and types[2]["code"] == "MEETING"
    assert len(types) == 3  # plus one custom type


def test_contacts_page_to_the_204(amo_server: AmoSandboxServer, amo_api) -> None:
    total = len(amo_server.state.contacts)
    assert total == 120
    items, codes = _all(amo_api, f"{amo_server.base_url}/api/v4/contacts?limit=40")
    assert len(items) == total and codes == [200, 200, 200, 204]
    assert [c["id"] for c in items] == sorted(amo_server.state.contacts)
    items, codes = _all(amo_api, f"{amo_server.base_url}/api/v4/contacts?limit=250")
    assert len(items) == total and codes == [200]
    too_many = amo_api.get(f"{amo_server.base_url}/api/v4/contacts?limit=251", timeout=5)
    assert too_many.status_code == 400
    missing = amo_api.get(f"{amo_server.base_url}/api/v4/contacts/999999", timeout=5)
    assert missing.status_code == 204 and missing.content == b""


def test_contact_shape_and_birthday_at_local_midnight(
    amo_server: AmoSandboxServer, amo_api
) -> None:
    planted = amo_server.state.meta["planted"]["noon_birthday_contact"]
    riga = ZoneInfo("Europe/Riga")
    seen = {"PHONE": 0, "EMAIL": 0, "birthday": 0}
    items, _ = _all(amo_api, f"{amo_server.base_url}/api/v4/contacts?limit=250&with=leads")
    for contact in items:
        assert contact["_embedded"]["tags"] == [] and "leads" in contact["_embedded"]
        for field in contact["custom_fields_values"] or []:
            if field["field_code"] in ("PHONE", "EMAIL"):
                seen[field["field_code"]] += 1
                assert all(v["enum_id"] and v["enum"] for v in field["values"])
            if field["field_type"] == "birthday":
                seen["birthday"] += 1
                local = datetime.fromtimestamp(field["values"][0]["value"], riga)
                midnight = (local.hour, local.minute, local.second) == (0, 0, 0)
                assert midnight == (contact["id"] != planted)
    assert all(seen.values())
    one = amo_api.get(f"{amo_server.base_url}/api/v4/contacts/{items[0]['id']}", timeout=5)
    assert one.status_code == 200 and "leads" not in one.json()["_embedded"]


def test_updated_at_filter_and_order(amo_server: AmoSandboxServer, amo_api) -> None:
    stamps = sorted(c["updated_at"] for c in amo_server.state.contacts.values())
    cut = stamps[len(stamps) // 2]
    base = f"{amo_server.base_url}/api/v4/contacts"
    url = f"{base}?limit=250&filter[updated_at][from]={cut}&order[updated_at]=asc"
    items, _ = _all(amo_api, url)
    assert len(items) == sum(1 for s in stamps if s >= cut)
    assert [c["updated_at"] for c in items] == sorted(c["updated_at"] for c in items)
    ranged, _ = _all(amo_api, f"{base}?filter[updated_at][from]=0&filter[updated_at][to]={cut}")
    assert len(ranged) == sum(1 for s in stamps if s <= cut)
    # a scalar updated_at filter finds nothing on contacts (a reported amoCRM quirk)
    scalar = amo_api.get(f"{base}?filter[updated_at]={cut}", timeout=5)
    assert scalar.status_code == 204
    bad = amo_api.get(f"{base}?order[name]=asc", timeout=5)
    assert bad.status_code == 400


def test_events_at_most_100_newest_first(amo_server: AmoSandboxServer, amo_api) -> None:
    base = f"{amo_server.base_url}/api/v4/events"
    assert amo_api.get(f"{base}?limit=101", timeout=5).status_code == 400
    items, codes = _all(amo_api, f"{base}?limit=100")
    assert len(items) == len(amo_server.state.events) and codes[-1] in (200, 204)
    assert all(len(items[i : i + 100]) <= 100 for i in range(0, len(items), 100))
    stamps = [e["created_at"] for e in items]
    assert stamps == sorted(stamps, reverse=True)
    first = amo_api.get(f"{base}?limit=100", timeout=5).json()
    assert len(first["_embedded"]["events"]) == 100 and first["_page"] == 1
    calls, _ = _all(
        amo_api, f"{base}?limit=100&filter[type][]=incoming_call&filter[type][]=outgoing_call"
    )
    assert calls and {e["type"] for e in calls} <= {"incoming_call", "outgoing_call"}
    event = calls[0]
    assert isinstance(event["id"], str) and len(event["id"]) == 26
    assert event["entity_type"] == "contact" and "note" in event["value_after"][0]
    chats, _ = _all(amo_api, f"{base}?filter[type]=incoming_chat_message&filter[entity][]=contact")
    assert all("message" in e["value_after"][0] for e in chats)
    cid = event["entity_id"]
    mine, _ = _all(amo_api, f"{base}?filter[entity]=contact&filter[entity_id][]={cid}")
    assert mine and {e["entity_id"] for e in mine} == {cid}
    both = f"{base}?filter[entity][]=contact&filter[entity][]=lead&filter[entity_id][]={cid}"
    assert amo_api.get(both, timeout=5).status_code == 400
    since = stamps[10]
    recent, _ = _all(amo_api, f"{base}?filter[created_at][from]={since}")
    assert len(recent) == sum(1 for s in stamps if s >= since)


def test_call_notes_carry_direction_duration_and_status(
    amo_server: AmoSandboxServer, amo_api
) -> None:
    url = (
        f"{amo_server.base_url}/api/v4/contacts/notes?limit=250"
        "&filter[note_type][]=call_in&filter[note_type][]=call_out"
    )
    notes, _ = _all(amo_api, url)
    assert notes and {n["note_type"] for n in notes} == {"call_in", "call_out"}
    bad = amo_server.state.meta["planted"]["bad_duration_call_note"]
    for note in notes:
        params = note["params"]
        assert params["call_status"] in range(1, 8)
        assert isinstance(params["duration"], int) == (note["id"] != bad)
    cid = notes[0]["entity_id"]
    own, _ = _all(amo_api, f"{amo_server.base_url}/api/v4/contacts/{cid}/notes")
    assert own and {n["entity_id"] for n in own} == {cid}
    kinds = {n["note_type"] for n in amo_server.state.notes["contacts"].values()}
    assert {"common", "service_message", "call_in", "call_out"} <= kinds


def test_leads_pipelines_and_closed_statuses(amo_server: AmoSandboxServer, amo_api) -> None:
    pipes = amo_api.get(f"{amo_server.base_url}/api/v4/leads/pipelines", timeout=5).json()
    for pipeline in pipes["_embedded"]["pipelines"]:
        ids = {s["id"] for s in pipeline["_embedded"]["statuses"]}
        assert {WON_STATUS_ID, LOST_STATUS_ID} <= ids
    leads, _ = _all(amo_api, f"{amo_server.base_url}/api/v4/leads?limit=250&with=contacts")
    assert len(leads) == len(amo_server.state.leads)
    statuses = {lead["status_id"] for lead in leads}
    assert WON_STATUS_ID in statuses and LOST_STATUS_ID in statuses
    for lead in leads:
        assert isinstance(lead["price"], int)
        assert (lead["closed_at"] is not None) == (lead["status_id"] in (142, 143))
        assert lead["_embedded"]["contacts"][0]["is_main"] is True
    won, _ = _all(
        amo_api,
        f"{amo_server.base_url}/api/v4/leads?filter[statuses][0][pipeline_id]=8000001"
        "&filter[statuses][0][status_id]=142",
    )
    assert won and all(lead["status_id"] == 142 for lead in won)


def test_tasks_and_users(amo_server: AmoSandboxServer, amo_api) -> None:
    base = f"{amo_server.base_url}/api/v4/tasks"
    open_tasks, _ = _all(amo_api, f"{base}?filter[is_completed]=0&limit=250")
    assert all(not t["is_completed"] for t in open_tasks)
    done, _ = _all(amo_api, f"{base}?filter[is_completed]=1&limit=250")
    assert done and all(t["result"]["text"] for t in done)
    assert len(open_tasks) + len(done) == len(amo_server.state.tasks)
    assert amo_api.get(f"{base}?filter[entity_id][]=1001", timeout=5).status_code == 400
    users, _ = _all(amo_api, f"{amo_server.base_url}/api/v4/users")
    assert len(users) == 9 and sum(u["rights"]["is_admin"] for u in users) == 1
