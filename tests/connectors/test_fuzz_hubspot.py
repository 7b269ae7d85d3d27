"""Property-based tests of HubSpot's payload mapping: bad records are quarantined, never raised.

Each property starts from a record shaped like the sandbox's (sandbox/hubspot/render.py),
mutates one to four values anywhere in it and maps it as the extract does: validate the object,
then map it. Only ValueError/ValidationError may come out (the extract quarantines exactly
those), and then the quarantine row's reason names the property; otherwise the row passes
`scoring.contract.conform`. The page property runs a whole extract with a fake client.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.base import QUARANTINE_COLUMNS, PortalInfo
from connectors.hubspot import mapping
from connectors.hubspot.client import BatchOutcome
from connectors.hubspot.extract import extract
from connectors.hubspot.models import HubSpotObject, Pipeline
from connectors.hubspot.settings import HubSpotSettings
from scoring import contract
from tests.connectors.conftest import fake_token
from tests.connectors.fuzz import apply, garbage, mutated

CONTACT: dict[str, Any] = {
    "id": "1004",
    "createdAt": "2025-06-01T10:00:00Z",
    "updatedAt": "2026-02-25T10:00:00Z",
    "archived": False,
    "properties": {
        "createdate": "2025-06-01T10:00:00.000Z",
        "firstname": "Юлия",
        "lastname": "Смирнова",
        "email": "j@example.com",
        "phone": "+371 20000000",
        "hubspot_owner_id": "61230008",
        "hs_analytics_source": "ORGANIC_SEARCH",
        "lifecyclestage": "customer",
        "date_of_birth": "1990-04-12",
        "hs_email_optout": "false",
        "heatsync_score": "87",
        "heatsync_next_touch_due": "2026-03-01",
        "heatsync_updated_at": "1772000000000",
        "num_conversion_events": "3",
        "recent_conversion_date": "2026-02-24T09:00:00Z",
        "hs_analytics_num_page_views": "12",
        "hs_analytics_last_timestamp": "1771900000000",
        "hs_email_open": "4",
        "hs_email_last_open_date": "2026-02-20T08:00:00Z",
    },
}
ENGAGEMENTS: dict[str, dict[str, Any]] = {
    "calls": {
        "hs_timestamp": "2026-02-24T09:00:00Z",
        "hs_call_direction": "INBOUND",
        "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
        "hs_call_status": "COMPLETED",
        "hs_call_duration": "125000",
        "hs_call_body": "<p>asked for a <b>quote</b></p>",
    },
    "emails": {
        "hs_timestamp": "2026-02-24T09:00:00Z",
        "hs_email_direction": "INCOMING_EMAIL",
        "hs_email_status": "SENT",
        "hs_email_subject": "Re: offer",
        "hs_email_text": "yes please",
    },
    "meetings": {
        "hs_timestamp": "2026-02-24T09:00:00Z",
        "hs_meeting_start_time": "2026-02-24T09:00:00Z",
        "hs_meeting_end_time": "2026-02-24T10:00:00Z",
        "hs_meeting_outcome": "COMPLETED",
        "hs_meeting_title": "Demo",
    },
    "notes": {"hs_timestamp": "2026-02-24T09:00:00Z", "hs_note_body": "[complaint] late again"},
    "tasks": {
        "hs_timestamp": "2026-02-24T09:00:00Z",
        "hs_task_status": "COMPLETED",
        "hs_task_completion_date": "2026-02-24T11:00:00Z",
        "hs_task_subject": "Send the contract",
    },
}
DEAL: dict[str, Any] = {
    "id": "5001",
    "createdAt": "2026-01-10T10:00:00Z",
    "properties": {
        "dealname": "Order",
        "amount": "1200.50",
        "deal_currency_code": "EUR",
        "pipeline": "default",
        "dealstage": "closedwon",
        "createdate": "2026-01-10T10:00:00Z",
        "closedate": "2026-02-01T10:00:00Z",
    },
}
PIPELINES = [
    Pipeline.model_validate(
        {
            "id": "default",
            "label": "Sales",
            "stages": [
                {
                    "id": "closedwon",
                    "label": "Won",
                    "metadata": {"isClosed": "true", "probability": "1.0"},
                },
                {
                    "id": "closedlost",
                    "label": "Lost",
                    "metadata": {"isClosed": True, "probability": 0},
                },
                {"id": "open", "label": "Open", "metadata": {"probability": "0.4"}},
            ],
        }
    )
]
NOTE_TAGS = ("complaint", "sms", "payment_late", "refund")
ACTIVITY_EXTRA = {"crm_id": "str", "crm_type": "str"}
# properties the valid records leave out, so that mutations can also add them
EXTRA_PROPS = tuple(
    ("properties", name)
    for name in ("hs_merged_object_ids", "hs_email_optout_date", "message", "heatsync_touches_30d")
)


def _map(object_type: str, raw: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(row, None) or (None, quarantine row), as the extract maps and quarantines a record."""
    try:
        obj = HubSpotObject.model_validate(raw)
        if not obj.id.strip():
            raise ValueError("missing id")
        if object_type == "contacts":
            row: dict[str, Any] | None = mapping.contact(obj, "hubspot", "vip", Counter())[0]
        elif object_type == "deals":
            row = mapping.deal(obj, mapping.stages(PIPELINES), "EUR")
        else:
            row = mapping.activity(object_type, obj, NOTE_TAGS)
    except (ValidationError, ValueError) as exc:
        quarantined = mapping.quarantine_row("hubspot", object_type, raw, exc)
        assert set(quarantined) == set(QUARANTINE_COLUMNS)
        reason = quarantined["reason"]
        assert isinstance(reason, str) and 0 < len(reason) <= 500
        assert ":" in reason or reason == "missing id", reason  # "<field>: <what is wrong>"
        return None, quarantined
    return row, None


def _conforms(row: dict[str, Any], table: str, extra: dict[str, str] | None = None) -> None:
    frame = contract.conform(pd.DataFrame([row]), table, extra)
    assert len(frame) == 1


@given(st.one_of(mutated(CONTACT, EXTRA_PROPS), garbage))
@example(apply(CONTACT, ("properties", "createdate"), "99999999999999999999"))
@example(apply(CONTACT, ("properties", "heatsync_updated_at"), "253402300800000"))
@example(apply(CONTACT, ("properties", "date_of_birth"), "0001-01-01"))
@example(apply(CONTACT, ("properties", "createdate"), "2300-01-01T00:00:00Z"))
def test_contact_maps_or_quarantines(raw: Any) -> None:
    row, _ = _map("contacts", raw)
    if row is not None:
        _conforms(row, "contacts", mapping.ROLLUP_COUNT_COLUMNS)


@given(
    st.sampled_from(sorted(ENGAGEMENTS)).flatmap(
        lambda kind: st.tuples(
            st.just(kind),
            mutated(
                {"id": "9001", "createdAt": "2026-02-24T09:00:00Z", "properties": ENGAGEMENTS[kind]}
            ),
        )
    )
)
@example(
    (
        "calls",
        apply(
            {"id": "1", "properties": ENGAGEMENTS["calls"]}, ("properties", "hs_timestamp"), "1e20"
        ),
    )
)
def test_activity_maps_or_quarantines(case: tuple[str, Any]) -> None:
    object_type, raw = case
    row, _ = _map(object_type, raw)
    if row is not None:
        _conforms({**row, "activity_id": "x", "contact_id": "1"}, "activities", ACTIVITY_EXTRA)


@given(st.one_of(mutated(DEAL), garbage))
@example(apply(DEAL, ("properties", "closedate"), "-99999999999999"))
def test_deal_maps_or_quarantines(raw: Any) -> None:
    row, _ = _map("deals", raw)
    if row is not None:
        _conforms({**row, "contact_id": "1"}, "deals")


class FakeClient:
    """The reads of a full extract, answered from lists (no HTTP)."""

    def __init__(self, contacts: list[dict[str, Any]], notes: list[dict[str, Any]]) -> None:
        self.records = {"contacts": contacts, "notes": notes}

    def list_objects(self, object_type: str, properties: Any, archived: bool = False) -> Any:
        return iter([] if archived else list(self.records.get(object_type, [])))

    def associations(self, from_type: str, to_type: str, ids: Any) -> dict[str, list[str]]:
        if from_type == "contacts":  # every engagement is on contact 1004
            linked = [str(r["id"]) for r in self.records.get(to_type, [])]
            return {i: linked for i in ids if i == "1004"}
        return {i: ["1004"] for i in ids}

    def associations_later(self, from_type: str, to_type: str, ids: Any, fanout: Any) -> Any:
        return lambda: self.associations(from_type, to_type, ids)

    def batch_read(self, object_type: str, ids: Any, properties: Any) -> BatchOutcome:
        wanted = set(ids)
        return BatchOutcome([r for r in self.records.get(object_type, []) if r["id"] in wanted])

    def pipelines(self) -> list[Pipeline]:
        return PIPELINES


@given(
    st.lists(st.sampled_from(["1004", "1005", "1006"]), min_size=1, max_size=6),
    st.lists(st.sampled_from(["9001", "9002"]), max_size=4),
)
def test_a_page_with_duplicate_ids_maps_to_one_row_per_id(
    contact_ids: list[str], note_ids: list[str]
) -> None:
    contact_ids = ["1004", *contact_ids]  # the contact of every note
    contacts = [{**CONTACT, "id": cid} for cid in contact_ids]
    notes = [{"id": n, "properties": ENGAGEMENTS["notes"]} for n in note_ids]
    settings = HubSpotSettings.model_validate({"access_token": fake_token(), "portal": "hubspot"})
    connector = SimpleNamespace(
        client=FakeClient(contacts, notes),
        settings=settings,
        portal_info=lambda: PortalInfo("24681357", "Europe/Riga", "EUR"),
    )
    result = extract(connector, None, datetime(2026, 2, 25, tzinfo=UTC))  # type: ignore[arg-type]
    assert sorted(result.contacts["contact_id"]) == sorted(set(contact_ids))
    notes_out = result.activities[result.activities["crm_type"] == "notes"]
    assert sorted(notes_out["activity_id"]) == sorted({f"note:{n}:1004" for n in note_ids})
    assert result.quarantine.empty
