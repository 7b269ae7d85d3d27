"""Property-based tests of amoCRM's payload mapping: bad records are quarantined, never raised.

Each property starts from a record shaped like the sandbox's (sandbox/amocrm/render.py),
mutates one to four values anywhere in it (connectors' fuzz strategies) and maps it with the
pure per-record functions. A record either becomes a row that `scoring.contract.conform`
accepts, or is skipped by rule, or lands in the quarantine with a reason naming the field; no
exception escapes. The page property runs a whole extract with a fake client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.amocrm.activities import chat_activity, note_activity, task_activity
from connectors.amocrm.contacts import FieldMap, contact_row
from connectors.amocrm.deals import read_deals
from connectors.amocrm.extract import Extraction
from connectors.amocrm.models import CustomField, Pipeline
from connectors.amocrm.settings import AmoCrmSettings
from connectors.base import QUARANTINE_COLUMNS, PortalInfo
from scoring import contract
from tests.connectors.conftest import fake_token
from tests.connectors.fuzz import apply, garbage, mutated

NOW = 1_772_000_000  # 2026-02-25, Unix seconds
TZ = "Europe/Moscow"
# field ids as the sandbox numbers them: phone, email, birthday, source, dnc, vip, ours
FIELDS = [
    {"id": 501, "name": "Телефон", "type": "multitext", "code": "PHONE"},
    {"id": 502, "name": "Email", "type": "multitext", "code": "EMAIL"},
    {"id": 503, "name": "День рождения", "type": "birthday", "code": None},
    {
        "id": 504,
        "name": "Источник",
        "type": "select",
        "code": "SOURCE",
        "enums": [{"id": 9001, "value": "Сайт", "code": "WEBSITE"}],
    },
    {"id": 505, "name": "VIP", "type": "checkbox", "code": "VIP"},
    {"id": 506, "name": "Не звонить", "type": "checkbox", "code": "DO_NOT_CONTACT"},
    {
        "id": 507,
        "name": "Температура",
        "type": "select",
        "code": "HEATSYNC_TEMPERATURE",
        "enums": [{"id": 9101, "value": "Горячий", "code": "HOT"}],
    },
    {"id": 508, "name": "Балл", "type": "numeric", "code": "HEATSYNC_SCORE"},
    {"id": 509, "name": "Следующее касание", "type": "date", "code": "HEATSYNC_NEXT_TOUCH_DUE"},
    {"id": 510, "name": "Обновлено", "type": "date_time", "code": "HEATSYNC_UPDATED_AT"},
]
MIDNIGHT = 1_771_966_800  # 2026-02-25 00:00 in Moscow

CONTACT: dict[str, Any] = {
    "id": 7001,
    "name": "Юлия Смирнова",
    "first_name": "Юлия",
    "last_name": "Смирнова",
    "responsible_user_id": 61230004,
    "created_at": NOW - 86_400 * 90,
    "updated_at": NOW,
    "is_deleted": False,
    "custom_fields_values": [
        {"field_id": 501, "values": [{"value": "+7 900 000-00-00", "enum_code": "MOB"}]},
        {"field_id": 502, "values": [{"value": "j@example.com", "enum_code": "WORK"}]},
        {"field_id": 503, "values": [{"value": MIDNIGHT - 86_400 * 365 * 30}]},
        {"field_id": 504, "values": [{"value": "Сайт", "enum_id": 9001}]},
        {"field_id": 505, "values": [{"value": True}]},
        {"field_id": 507, "values": [{"value": "Горячий", "enum_id": 9101}]},
        {"field_id": 508, "values": [{"value": "87"}]},
        {"field_id": 509, "values": [{"value": MIDNIGHT}]},
        {"field_id": 510, "values": [{"value": MIDNIGHT}]},
    ],
}
NOTE: dict[str, Any] = {
    "id": 8001,
    "entity_id": 7001,
    "created_at": NOW - 3600,
    "updated_at": NOW - 3600,
    "note_type": "call_in",
    "params": {"duration": 125, "call_status": 4, "call_result": "asked for a quote"},
}
NOTE_TYPES = ("call_in", "call_out", "sms_in", "sms_out", "common", "service_message", "x")
EVENT: dict[str, Any] = {
    "id": "01jabc",
    "type": "incoming_chat_message",
    "entity_type": "contact",
    "entity_id": 7001,
    "created_at": NOW - 600,
}
TASK: dict[str, Any] = {
    "id": 9001,
    "entity_id": 7001,
    "entity_type": "contacts",
    "created_at": NOW - 86_400,
    "updated_at": NOW - 3600,
    "is_completed": True,
    "task_type_id": 2,
    "text": "Встреча в офисе",
    "duration": 3600,
    "complete_till": NOW - 3600,
    "result": {"text": "[meeting no_show] did not come"},
}
LEAD: dict[str, Any] = {
    "id": 4001,
    "name": "Заказ",
    "price": 12000,
    "status_id": 142,
    "pipeline_id": 77,
    "created_at": NOW - 86_400 * 10,
    "updated_at": NOW - 86_400,
    "closed_at": NOW - 86_400,
    "is_deleted": False,
    "_embedded": {"contacts": [{"id": 7001}, {"id": 7002}]},
}
PIPELINES = [
    {"id": 77, "name": "Main", "_embedded": {"statuses": [{"id": 142, "name": "Won"}]}},
]


class FakeClient:
    """The reads of an extract, answered from lists (no HTTP)."""

    def __init__(self, pages: dict[str, list[Any]] | None = None) -> None:
        self.by_path = pages or {}

    def pages(self, path: str, key: str, params: Any = None, limit: int | None = None) -> Any:
        return iter(list(self.by_path.get(path, [])))

    def page(
        self, path: str, key: str, params: Any, page: int, limit: int | None = None
    ) -> tuple[list[Any], bool]:
        return (list(self.by_path.get(path, [])) if page == 1 else []), False

    def custom_fields(self, entity: str = "contacts") -> list[CustomField]:
        return [CustomField.model_validate(f) for f in FIELDS]

    def pipelines(self) -> list[Pipeline]:
        return [Pipeline.model_validate(p) for p in PIPELINES]


def _connector(client: FakeClient) -> Any:
    settings = AmoCrmSettings.model_validate(
        {"base_url": "https://fuzz.amocrm.ru", "access_token": fake_token(), "api_filter": True}
    )
    return SimpleNamespace(
        crm="amocrm",
        client=client,
        settings=settings,
        portal_info=lambda: PortalInfo("30551234", TZ, "RUB"),
    )


def _extraction(client: FakeClient | None = None) -> Extraction:
    until = datetime.fromtimestamp(NOW, tz=UTC)
    return Extraction(_connector(client or FakeClient()), None, until)


def _check_quarantine(ex: Extraction, before: int, record: Any) -> None:
    """The new quarantine rows are well formed: a reason that says what is wrong and where."""
    for row in ex.quarantine[before:]:
        assert set(row) == set(QUARANTINE_COLUMNS)
        assert isinstance(row["reason"], str) and row["reason"].strip()
        assert len(row["reason"]) <= 500
        assert ":" in row["reason"], row["reason"]  # "<field>: <what is wrong>"
        if isinstance(record, dict) and record.get("id") not in (None, ""):
            assert row["object_id"] == str(record["id"])


def _conforms(row: dict[str, Any], table: str, extra: dict[str, str] | None = None) -> None:
    frame = contract.conform(pd.DataFrame([row]), table, extra)
    assert len(frame) == 1
    key = {"contacts": "contact_id", "activities": "activity_id", "deals": "deal_id"}[table]
    assert frame[key].iloc[0], f"empty {key}"


ACTIVITY_EXTRA = {"crm_id": "str", "crm_type": "str"}
any_record: st.SearchStrategy[Any] = st.one_of(garbage, st.just([]), st.just("x"))


@given(st.one_of(mutated(CONTACT), any_record))
@example(apply(CONTACT, ("custom_fields_values", 2, "values", 0, "value"), "2024-02-30"))
@example(apply(CONTACT, ("created_at",), 10**20))
@example(apply(CONTACT, ("created_at",), 253_402_300_800))
@example(apply(CONTACT, ("responsible_user_id",), float("inf")))
def test_contact_row_maps_or_quarantines(raw: Any) -> None:
    ex = _extraction()
    fields = FieldMap(FakeClient().custom_fields(), _connector(FakeClient()))
    row = contact_row(ex, raw, fields)
    if row is not None:
        _conforms(row, "contacts")
    _check_quarantine(ex, 0, raw)


@given(st.sampled_from(NOTE_TYPES).flatmap(lambda t: mutated({**NOTE, "note_type": t})))
def test_note_activity_maps_or_quarantines(note: Any) -> None:
    ex = _extraction()
    row = note_activity(ex, note)
    if row is not None:
        _conforms(row, "activities", ACTIVITY_EXTRA)
    else:
        assert ex.quarantine or _skipped_note(note)
    _check_quarantine(ex, 0, note)


def _skipped_note(note: dict[str, Any]) -> bool:
    params = note.get("params")
    if not isinstance(params, dict):
        return False
    return "[hs:" in str(params.get("text") or "") or params.get("service") == "heatsync"


@given(st.one_of(mutated(EVENT), any_record))
@example(apply(EVENT, ("created_at",), float("nan")))
def test_chat_activity_maps_or_quarantines(event: Any) -> None:
    ex = _extraction()
    row = chat_activity(ex, event)
    if row is not None:
        _conforms(row, "activities", ACTIVITY_EXTRA)
    _check_quarantine(ex, 0, event)


@given(st.one_of(mutated(TASK), mutated({**TASK, "task_type_id": 1}), any_record))
@example(apply(TASK, ("duration",), 1e300))
def test_task_activity_maps_or_quarantines(task: Any) -> None:
    ex = _extraction()
    own: list[dict[str, Any]] = []
    row = task_activity(ex, task, own)
    if row is not None:
        _conforms(row, "activities", ACTIVITY_EXTRA)
    _check_quarantine(ex, 0, task)


@given(st.lists(st.one_of(mutated(LEAD), st.just(LEAD)), min_size=1, max_size=3))
@example([apply(LEAD, ("_embedded",), ["x"])])
@example(["not a lead"])
def test_leads_map_or_quarantine(leads: list[Any]) -> None:
    ex = _extraction(FakeClient({"/leads": leads}))
    rows = read_deals(ex)
    if rows:
        frame = contract.conform(pd.DataFrame(rows), "deals")
        assert frame["deal_id"].notna().all()
    _check_quarantine(ex, 0, None)


@given(
    st.lists(st.sampled_from([7001, 7002, 7003, "7001"]), min_size=1, max_size=6),
    st.lists(st.sampled_from([8001, 8002, "8001"]), max_size=4),
)
def test_a_page_with_duplicate_ids_maps_to_one_row_per_id(
    contact_ids: list[Any], note_ids: list[Any]
) -> None:
    contacts = [{**CONTACT, "id": cid, "updated_at": NOW - i} for i, cid in enumerate(contact_ids)]
    notes = [{**NOTE, "id": nid} for nid in note_ids]
    result = _extraction(FakeClient({"/contacts": contacts, "/contacts/notes": notes})).run()
    assert sorted(result.contacts["contact_id"]) == sorted({str(c) for c in contact_ids})
    assert sorted(result.activities["activity_id"]) == sorted({f"note:{n}" for n in note_ids})
    assert result.quarantine.empty
