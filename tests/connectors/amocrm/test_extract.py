"""amoCRM extraction against the sandbox, compared with the neutral portal it was rendered from."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import requests

from connectors.amocrm import AmoCrmConnector
from connectors.amocrm.extract import Bad, calendar_date
from connectors.amocrm.markers import task_marker
from connectors.amocrm.settings import CURSOR_OBJECTS
from connectors.base import QUARANTINE_COLUMNS
from sandbox.amocrm.account import ADMIN_USER_ID
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.portal import Portal, generate_portal
from scoring import contract
from tests.connectors.amocrm.conftest import ANCHOR, llt_settings

UNTIL = datetime(2026, 5, 2, tzinfo=UTC)
NOT_RENDERED = ("page_view", "web_session", "email_open", "email_click", "unsubscribe")


@pytest.fixture(scope="module")
def truth() -> Portal:
    return generate_portal(120, 5, ANCHOR, portal="sandbox-amocrm")


def _connector(server: AmoSandboxServer, **extra: object) -> AmoCrmConnector:
    return AmoCrmConnector(llt_settings(server, unowned_user_ids=(ADMIN_USER_ID,), **extra))


def test_contacts_match_the_truth(server: AmoSandboxServer, truth: Portal) -> None:
    result = _connector(server).extract(None, UNTIL)
    assert result.full
    got = result.contacts.set_index("contact_id")
    want = truth.contacts.set_index("contact_id")
    assert set(got.index) == set(want.index)
    planted = str(server.state.meta["planted"]["noon_birthday_contact"])
    for cid, row in want.iterrows():
        have = got.loc[cid]
        assert have["email"] == (row["email"] if isinstance(row["email"], str) else None)
        assert have["phone"] == (row["phone"] if isinstance(row["phone"], str) else None)
        assert have["owner_id"] == (row["owner_id"] if isinstance(row["owner_id"], str) else None)
        assert have["source"] == (row["source"] or "other")
        assert bool(have["is_vip"]) == bool(row["is_vip"])
        assert bool(have["do_not_contact"]) == bool(row["do_not_contact"])
        if cid == planted or pd.isna(row["birthday"]):
            assert pd.isna(have["birthday"])
        else:  # local midnight in Europe/Riga read back as the same calendar day
            assert have["birthday"].date() == row["birthday"].date()
    assert got["created_at"].dt.tz is not None


def test_deals_are_leads_with_won_and_lost_by_status(
    server: AmoSandboxServer, truth: Portal
) -> None:
    result = _connector(server).extract(None, UNTIL)
    got = result.deals.set_index("deal_id")
    want = truth.deals.set_index("deal_id")
    assert set(got.index) == set(want.index)
    for deal_id, row in want.iterrows():
        have = got.loc[deal_id]
        assert have["status"] == row["status"]
        assert have["contact_id"] == row["contact_id"]
        assert have["amount"] == round(float(row["amount"]))
        assert have["currency"] == "EUR"
        assert (have["closed_at"] is pd.NaT) == (row["status"] == "open")
    assert set(got.loc[got["status"] == "won", "stage"]) == {"Успешно реализовано"}
    assert set(got.loc[got["status"] == "lost", "stage"]) == {"Закрыто и не реализовано"}


def test_activities_match_the_truth(server: AmoSandboxServer, truth: Portal) -> None:
    result = _connector(server).extract(None, UNTIL)
    acts = result.activities
    want = truth.activities[~truth.activities["type"].isin(NOT_RENDERED)]
    got_counts = acts.fillna({"direction": "-"}).groupby(["type", "direction"]).size()
    want_counts = want.fillna({"direction": "-"}).groupby(["type", "direction"]).size()
    assert got_counts.sort_index().to_dict() == want_counts.sort_index().to_dict()
    calls = acts[acts["type"] == "call"]
    truth_calls = want[want["type"] == "call"]
    assert sorted(calls["outcome"]) == sorted(truth_calls["outcome"])
    assert sorted(calls["duration_s"].fillna(0)) == sorted(truth_calls["duration_s"].fillna(0))
    meetings = acts[acts["type"] == "meeting"]
    assert sorted(meetings["outcome"]) == sorted(want.loc[want["type"] == "meeting", "outcome"])
    assert acts["occurred_at"].dt.tz is not None
    contract.conform(acts, "activities")  # typed to the contract


def test_the_planted_bad_records_are_quarantined_with_reason(server: AmoSandboxServer) -> None:
    result = _connector(server).extract(None, UNTIL)
    planted = server.state.meta["planted"]
    q = result.quarantine
    assert list(q.columns) == list(QUARANTINE_COLUMNS)
    assert sorted(zip(q["object_type"], q["object_id"], strict=True)) == [
        ("contacts", str(planted["noon_birthday_contact"])),
        ("notes", str(planted["bad_duration_call_note"])),
    ]
    reasons = dict(zip(q["object_id"], q["reason"], strict=True))
    assert "not midnight in Europe/Riga" in reasons[str(planted["noon_birthday_contact"])]
    assert "about five minutes" in reasons[str(planted["bad_duration_call_note"])]
    assert result.warnings["quarantined"] == 2
    # the contact itself is still scored (without a birthday)
    assert str(planted["noon_birthday_contact"]) in set(result.contacts["contact_id"])


def test_paging_to_the_204_and_events_paging(server: AmoSandboxServer) -> None:
    whole = _connector(server).extract(None, UNTIL)
    server.reset_stats()
    one_at_a_time = _connector(server, page_size=60, events_page_size=5, read_workers=1)
    paged = one_at_a_time.extract(None, UNTIL)
    routes = server.stats()["by_route"]
    assert routes["GET /api/v4/contacts"] == 120 // 60 + 1  # the last full page leads to a 204
    server.reset_stats()
    ahead = _connector(server, page_size=60, events_page_size=5, read_workers=4)
    pd.testing.assert_frame_equal(ahead.extract(None, UNTIL).contacts, paged.contacts)
    # reading ahead may ask for a few pages past the 204, never more than the threads allow
    assert 3 <= server.stats()["by_route"]["GET /api/v4/contacts"] <= 3 + 4 - 1
    assert routes["GET /api/v4/events"] > 3
    for name in ("contacts", "activities", "deals"):
        left = getattr(whole, name).sort_values(list(getattr(whole, name).columns[:2]))
        right = getattr(paged, name).sort_values(list(getattr(paged, name).columns[:2]))
        pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True))


def _rename_by_hand(server: AmoSandboxServer) -> requests.Response:
    """Contact 1002 renamed as a person would, outside heatsync's pacing: first wait out the
    second in which the extract before may have spent the account's 7 requests."""
    time.sleep(1.1)
    return requests.patch(
        f"{server.base_url}/api/v4/contacts",
        json=[{"id": 1002, "name": "Renamed Person"}],
        headers={"Authorization": f"Bearer {server.long_lived_token}"},
        timeout=5,
    )


def test_incremental_reads_only_what_changed(server: AmoSandboxServer) -> None:
    conn = _connector(server)
    first = conn.extract(None, UNTIL)
    now = datetime.now(UTC)
    again = conn.extract(first.cursors, UNTIL)
    assert not again.full
    # the overlap re-reads nothing: the sandbox's records all predate the window
    assert len(again.contacts) == 0 and len(again.activities) == 0 and len(again.deals) == 0
    # a contact changed now is read by the next incremental extract, alone
    answer = _rename_by_hand(server)
    assert answer.status_code == 200
    later = conn.extract({k: now.isoformat() for k in first.cursors}, datetime.now(UTC))
    assert list(later.contacts["contact_id"]) == ["1002"]
    assert later.contacts.iloc[0]["name"] == "Renamed Person"


def test_heatsync_tasks_are_own_tasks_never_activity(server: AmoSandboxServer) -> None:
    conn = _connector(server)
    key = f"amocrm-{conn.portal_info().portal_id}:1002:call_now:2026-05-01"
    text = f"Позвонить сейчас {task_marker(key)}"
    headers = {"Authorization": f"Bearer {server.long_lived_token}"}
    made = requests.post(
        f"{server.base_url}/api/v4/tasks",
        json=[
            {
                "text": text,
                "complete_till": int(UNTIL.timestamp()),
                "entity_type": "contacts",
                "entity_id": 1002,
                "is_completed": True,
            },
            {  # a marker copied by hand to another contact does not count as heatsync's
                "text": text,
                "complete_till": int(UNTIL.timestamp()),
                "entity_type": "contacts",
                "entity_id": 1003,
            },
        ],
        headers=headers,
        timeout=5,
    ).json()
    task_id = str(made["_embedded"]["tasks"][0]["id"])
    result = conn.extract(None, datetime.now(UTC))
    assert list(result.own_tasks["task_key"]) == [key]
    assert list(result.own_tasks["task_id"]) == [task_id]
    assert not result.activities["crm_id"].isin([task_id]).any()


def test_date_fields_are_calendar_days_in_the_account_time_zone() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    # amoCRM answered 1634590800 (2021-10-18 21:00 UTC) for 19 October on a Moscow account
    assert calendar_date(1634590800, moscow, "birthday") == date(2021, 10, 19)
    # a plain UTC .date() would say the 18th; 21:00 is within the tolerance of the next midnight
    assert calendar_date(1634590800, ZoneInfo("UTC"), "birthday") == date(2021, 10, 19)
    assert calendar_date(1634601600, moscow, "birthday") == date(2021, 10, 19)  # 03:00 local
    assert calendar_date("1990-05-02", moscow, "birthday") == date(1990, 5, 2)
    with pytest.raises(Bad, match="not midnight"):
        calendar_date(1634590800 + 12 * 3600, moscow, "birthday")


def test_a_call_logged_on_a_lead_is_its_contacts_activity(server: AmoSandboxServer) -> None:
    lead = next(iter(server.state.leads.values()))
    contact = lead["contacts"][0]["id"]
    at = int(UNTIL.timestamp()) - 3600
    with server.lock:
        nid = server.state.new_id("note")
        server.state.notes["leads"][nid] = {
            "id": nid,
            "entity_id": lead["id"],
            "created_by": lead["responsible_user_id"],
            "updated_by": lead["responsible_user_id"],
            "created_at": at,
            "updated_at": at,
            "responsible_user_id": lead["responsible_user_id"],
            "group_id": 0,
            "note_type": "call_in",
            "params": {"uniq": "x", "duration": 95, "source": "pbx", "call_status": 4},
            "account_id": server.state.account_id,
        }
    conn = _connector(server)
    acts = conn.extract(None, UNTIL).activities.set_index("activity_id")
    row = acts.loc[f"leadnote:{nid}:{contact}"]
    assert (row["contact_id"], row["type"], row["direction"]) == (str(contact), "call", "inbound")
    assert (row["duration_s"], row["outcome"]) == (95.0, "connected")
    # incremental: the lead itself did not change, its contacts are looked up by id
    cursor = datetime.fromtimestamp(at - 10, UTC).isoformat()
    server.reset_stats()
    later = conn.extract(dict.fromkeys(CURSOR_OBJECTS, cursor), UNTIL)
    assert later.deals.empty
    assert f"leadnote:{nid}:{contact}" in set(later.activities["activity_id"])
    assert server.stats()["by_route"]["GET /api/v4/leads"] == 2  # the window, then by id


def test_without_api_filtering_reads_newest_first_until_the_window(
    server: AmoSandboxServer,
) -> None:
    filtered = _connector(server).extract(None, UNTIL)
    conn = _connector(server, api_filter=False)
    whole = conn.extract(None, UNTIL)
    assert whole.warnings["api_filter_off"] == 1
    for name in ("contacts", "deals"):
        left = getattr(filtered, name).sort_values(list(getattr(filtered, name).columns[:2]))
        right = getattr(whole, name).sort_values(list(getattr(whole, name).columns[:2]))
        pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True))
    # incremental: one changed contact, found on the first page, and paging stops there
    _rename_by_hand(server).raise_for_status()
    now = datetime.now(UTC)
    time.sleep(1.1)  # the PATCH above spent the account's budget outside heatsync's pacing
    server.reset_stats()
    later = conn.extract(dict.fromkeys(CURSOR_OBJECTS, now.isoformat()), datetime.now(UTC))
    assert list(later.contacts["contact_id"]) == ["1002"]
    routes = server.stats()["by_route"]
    assert routes["GET /api/v4/contacts"] == 1 and routes["GET /api/v4/leads"] == 1, routes
