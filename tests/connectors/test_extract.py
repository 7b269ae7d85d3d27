"""Extract against the HubSpot sandbox: full mapping, incremental cursors, removed contacts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from connectors.base import QUARANTINE_COLUMNS, field_changes
from connectors.hubspot.settings import CURSOR_OBJECTS
from scoring import contract
from tests.connectors.conftest import connector_for, needs_sandbox

pytestmark = needs_sandbox

ROLLUP_TYPES = ("page_view", "web_session", "email_open", "email_click", "form_submission")


def _patch(hub, object_type: str, object_id: str, properties: dict[str, str]) -> None:
    hub.client.http.request(
        "PATCH",
        f"{hub.settings.objects_path(object_type)}/{object_id}",
        json_body={"properties": properties},
        write=True,
    )


def test_full_extract_maps_every_object_type_and_archetype(server, portal) -> None:
    planted = server.state.meta["planted"]
    hub = connector_for(server)
    result = hub.extract(None, datetime.now(UTC))
    assert result.full
    assert set(result.cursors) == set(CURSOR_OBJECTS)
    # only the planted bad records are quarantined
    assert set(
        zip(result.quarantine["object_type"], result.quarantine["object_id"], strict=True)
    ) == {
        ("contacts", planted["bad_createdate_contact"]),
        ("calls", planted["bad_duration_call"]),
    }
    removed = set(result.removed_contact_ids)
    assert {*planted["archived_contacts"], planted["merged"]["merged_away"]} <= removed
    truth = portal.contacts
    contacts = result.contacts.set_index("contact_id")
    assert set(contacts.index) == set(truth["contact_id"])
    t = truth.set_index("contact_id").loc[contacts.index]
    for column in ("name", "email", "owner_id", "source", "lifecycle_stage"):
        same = (contacts[column].fillna("") == t[column].fillna("")).mean()
        assert same == 1.0, column
    for column in ("do_not_contact", "is_vip"):
        assert (contacts[column] == t[column]).all(), column
    assert (contacts["created_at"] == t["created_at"]).all()
    known = t["birthday"].notna()
    assert (contacts.loc[known, "birthday"] == t.loc[known, "birthday"]).all()
    assert contacts["current_temperature"].isna().all()
    for column in ("form_submission_count", "page_view_count", "email_open_count"):
        assert column in result.contacts.columns

    # activities: every truth event is there (roll-ups as one event at the last date)
    acts = result.activities
    assert acts["activity_id"].is_unique
    assert set(acts["type"]) <= set(contract.ACTIVITY_TYPES)
    pa = portal.activities
    truth_acts = pa[
        pa["contact_id"].isin(contacts.index)
        & (pa["type"] != "unsubscribe")  # HubSpot keeps only the opt-out flag, no date
        & ~(pa["type"].isin(ROLLUP_TYPES) & (pa["occurred_at"] > portal.anchor_ts))
    ]
    got = acts.groupby(["contact_id", "type"]).size()
    want = truth_acts.groupby(["contact_id", "type"]).size()
    for (contact_id, kind), count in want.items():
        if kind in ROLLUP_TYPES:
            rows = acts[(acts["contact_id"] == contact_id) & (acts["type"] == kind)]
            assert len(rows) >= 1 and rows["is_rollup"].any(), (contact_id, kind)
            last = truth_acts[
                (truth_acts["contact_id"] == contact_id) & (truth_acts["type"] == kind)
            ]
            # "Time last seen" covers sessions too, so page views may show a later date
            if kind == "page_view":
                assert rows["occurred_at"].max() >= last["occurred_at"].max(), contact_id
            else:
                assert rows["occurred_at"].max() == last["occurred_at"].max(), (contact_id, kind)
        else:
            assert got.get((contact_id, kind), 0) == count, (contact_id, kind)
    # every archetype's evidence types survive the round trip
    arche = t["archetype"]
    for name, ids in arche.groupby(arche).groups.items():
        want_types = set(truth_acts.loc[truth_acts["contact_id"].isin(ids), "type"])
        got_types = set(acts.loc[acts["contact_id"].isin(ids), "type"])
        assert want_types <= got_types, (name, want_types - got_types)
    calls = acts[acts["type"] == "call"]
    assert calls["outcome"].notna().all() and calls["direction"].notna().all()
    meetings = acts[acts["type"] == "meeting"]
    assert meetings["outcome"].notna().all()

    # deals: one row per (deal, contact), status and stage from the pipeline
    deals = result.deals
    truth_deals = portal.deals[portal.deals["contact_id"].isin(contacts.index)]
    assert set(zip(deals["deal_id"], deals["contact_id"], strict=True)) == set(
        zip(truth_deals["deal_id"], truth_deals["contact_id"], strict=True)
    )
    merged = deals.merge(truth_deals, on=["deal_id", "contact_id"], suffixes=("", "_t"))
    assert (merged["status"] == merged["status_t"]).all()
    assert (merged["amount"].round(2) == merged["amount_t"].round(2)).all()
    assert merged["stage_probability"].notna().all()
    assert merged["currency"].notna().all()
    assert (merged.loc[merged["status"] != "open", "closed_at"].notna()).all()

    info = hub.portal_info()
    assert info.time_zone and info.portal_id
    assert hub.stats.requests > 0 and hub.stats.write_requests == 0


def test_incremental_returns_only_changed_records(server) -> None:
    hub = connector_for(server)
    first = hub.extract(None, datetime.now(UTC))
    contact_id = str(first.contacts["contact_id"].iloc[3])
    time.sleep(0.05)
    _patch(hub, "contacts", contact_id, {"firstname": "Changed"})
    time.sleep(0.05)
    second = hub.extract(first.cursors, datetime.now(UTC) + timedelta(seconds=1))
    assert not second.full
    assert second.contacts["contact_id"].tolist() == [contact_id]
    assert second.contacts["name"].iloc[0].startswith("Changed")
    assert set(second.activities["contact_id"]) <= {contact_id}
    assert second.activities["is_rollup"].all()
    assert len(second.deals) == 0
    assert second.cursors["contacts"] > first.cursors["contacts"]
    # nothing changed since: the next window is empty
    third = hub.extract(second.cursors, datetime.now(UTC) + timedelta(seconds=2))
    assert len(third.contacts) == 0 and len(third.activities) == 0


def test_archived_and_merged_contacts_are_removed_and_never_written(server) -> None:
    planted = server.state.meta["planted"]
    hub = connector_for(server)
    first = hub.extract(None, datetime.now(UTC))
    live = first.contacts["contact_id"].tolist()
    archived_now, keep = live[0], live[1]
    hub.client.http.request(
        "DELETE", f"{hub.settings.objects_path('contacts')}/{archived_now}", write=True
    )
    result = hub.extract(first.cursors, datetime.now(UTC) + timedelta(seconds=1))
    gone = {archived_now, *planted["archived_contacts"], planted["merged"]["merged_away"]}
    assert gone <= set(result.removed_contact_ids)
    full = hub.extract(None, datetime.now(UTC) + timedelta(seconds=1))
    assert gone <= set(full.removed_contact_ids)
    assert not gone & set(full.contacts["contact_id"])
    assert planted["merged"]["survivor"] in set(full.contacts["contact_id"])
    assert not gone & set(full.activities["contact_id"])
    assert not gone & set(full.deals["contact_id"])

    targets = [*sorted(gone), keep]
    scores = pd.DataFrame(
        {"contact_id": targets, "temperature": "hot", "score": 90.0}, index=range(len(targets))
    )
    contacts = pd.DataFrame({"contact_id": targets})
    updates = field_changes(scores, contacts)
    assert len(updates) == len(targets)
    hub.ensure_schema("en")
    server.reset_stats()
    report = hub.write_fields(updates, skip_ids=full.removed_contact_ids)
    assert sorted(report.skipped) == sorted(gone)
    assert report.written == 1 and report.ok
    assert server.stats()["writes"] == 1


def test_bad_records_are_quarantined_with_reason_and_counted(server) -> None:
    planted = server.state.meta["planted"]
    hub = connector_for(server)
    result = hub.extract(None, datetime.now(UTC))
    q = result.quarantine.set_index("object_id")
    assert list(result.quarantine.columns) == list(QUARANTINE_COLUMNS)
    bad_contact, bad_call = planted["bad_createdate_contact"], planted["bad_duration_call"]
    assert "created_at" in q.loc[bad_contact, "reason"]
    assert "not-a-date" in q.loc[bad_contact, "reason"]
    assert "duration" in q.loc[bad_call, "reason"] and "number" in q.loc[bad_call, "reason"]
    assert json.loads(q.loc[bad_call, "payload"])["id"] == bad_call
    assert all(server.token not in p for p in q["payload"])
    assert bad_contact not in set(result.contacts["contact_id"])
    assert bad_call not in set(result.activities["crm_id"])
    assert result.warnings["quarantined"] == 2
    # a free-text birthday only nulls the birthday and is counted
    odd = planted["free_text_birthday_contact"]
    row = result.contacts.set_index("contact_id").loc[odd]
    assert pd.isna(row["birthday"])
    assert result.warnings["birthday_unparsed"] == 1


@pytest.mark.parametrize("api_version", ["v3"])
def test_numbered_paths_work_too(server, api_version: str) -> None:
    hub = connector_for(server, api_version=api_version)
    result = hub.extract(None, datetime.now(UTC))
    assert len(result.contacts) > 0
