"""amoCRM write-back against the sandbox: fields created once, values written in batches and only
when changed, one invalid record not losing the rest, multitext fields untouched, tasks never
duplicated even when a create's answer is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from connectors.amocrm import AmoCrmConnector
from connectors.amocrm.markers import task_marker
from connectors.base import field_changes
from sandbox.amocrm.server import AmoSandboxServer
from scoring import contract
from tests.connectors.amocrm.conftest import llt_settings

CODES = {
    "HEATSYNC_TEMPERATURE",
    "HEATSYNC_SCORE",
    "HEATSYNC_SEGMENT",
    "HEATSYNC_REASONS",
    "HEATSYNC_TREND",
    "HEATSYNC_NEXT_TOUCH_DUE",
    "HEATSYNC_TOUCHES_30D",
    "HEATSYNC_UPDATED_AT",
}


def _writes(server: AmoSandboxServer) -> dict[str, int]:
    routes = server.stats()["by_route"]
    return {k: v for k, v in routes.items() if not k.startswith("GET ")}


def _scores(contacts: pd.DataFrame) -> pd.DataFrame:
    n = len(contacts)
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "contact_id": contacts["contact_id"].to_numpy(),
            "temperature": rng.choice(contract.TEMPERATURES, n),
            "score": rng.integers(0, 100, n).astype(float),
            "segment": rng.choice([*contract.SEGMENTS, None], n),
            "reasons": ["Недавний входящий звонок; открыл письмо"] * n,
            "trend": rng.choice(contract.TRENDS, n),
            "next_touch_due": pd.Timestamp("2026-05-10"),
            "touches_30d": rng.integers(0, 9, n),
        }
    )


def _multitext(server: AmoSandboxServer) -> dict[int, Any]:
    out = {}
    for cid, contact in server.state.contacts.items():
        out[cid] = [
            v
            for v in contact["custom_fields_values"] or []
            if v["field_code"] in ("PHONE", "EMAIL") or v["field_name"] in ("Источник", "VIP")
        ]
    return out


def test_fields_are_created_once_with_codes_and_enums(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    created = conn.ensure_schema("ru")
    assert set(created) == CODES  # the account's own VIP checkbox is read, not duplicated
    fields = {f["code"]: f for f in server.state.custom_fields["contacts"] if f.get("code")}
    temperature = fields["HEATSYNC_TEMPERATURE"]
    # reps may correct the temperature and the segment (their edit stands for a while)
    assert temperature["type"] == "select" and not temperature["is_api_only"]
    assert [e["code"] for e in temperature["enums"]] == ["cold", "warm", "hot"]
    assert [e["value"] for e in temperature["enums"]] == ["Холодный", "Тёплый", "Горячий"]
    assert [e["code"] for e in fields["HEATSYNC_SEGMENT"]["enums"]] == list(contract.SEGMENTS)
    assert [e["code"] for e in fields["HEATSYNC_TREND"]["enums"]] == list(contract.TRENDS)
    assert fields["HEATSYNC_NEXT_TOUCH_DUE"]["type"] == "date"
    editable = {"HEATSYNC_TEMPERATURE", "HEATSYNC_SEGMENT"}
    assert all(fields[c]["is_api_only"] == (c not in editable) for c in CODES)
    assert _writes(server) == {"POST /api/v4/contacts/custom_fields": 1}

    server.reset_stats()
    assert conn.ensure_schema("ru") == []
    assert _writes(server) == {}

    # another locale renames once (enum ids kept), then nothing again
    enum_ids = [e["id"] for e in temperature["enums"]]
    assert conn.ensure_schema("lv") == []
    assert _writes(server) == {"PATCH /api/v4/contacts/custom_fields": 1}
    fields = {f["code"]: f for f in server.state.custom_fields["contacts"] if f.get("code")}
    assert [e["value"] for e in fields["HEATSYNC_TEMPERATURE"]["enums"]] == [
        "Auksts",
        "Silts",
        "Karsts",
    ]
    assert [e["id"] for e in fields["HEATSYNC_TEMPERATURE"]["enums"]] == enum_ids
    server.reset_stats()
    conn.ensure_schema("lv")
    assert _writes(server) == {}


def test_write_back_in_batches_then_nothing(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    conn.ensure_schema("ru")
    until = datetime.now(UTC)
    before = _multitext(server)
    result = conn.extract(None, until)
    scores = _scores(result.contacts)
    updates = field_changes(scores, result.contacts)
    assert len(updates) == 120
    server.reset_stats()
    report = conn.write_fields(updates)
    assert report.ok and report.written == 120
    assert _writes(server) == {"PATCH /api/v4/contacts": 3}  # 50 + 50 + 20
    assert _multitext(server) == before  # phones, e-mails, other fields untouched

    # what amoCRM holds now reads back as the scores
    again = conn.extract(None, datetime.now(UTC))
    back = again.contacts.set_index("contact_id")
    want = scores.set_index("contact_id")
    assert (back["current_temperature"] == want["temperature"]).all()
    assert (back["current_score"] == want["score"]).all()
    assert (back["current_segment"].fillna("-") == want["segment"].fillna("-")).all()
    assert (back["current_next_touch_due"] == pd.Timestamp("2026-05-10")).all()

    # the second write-back sends nothing
    server.reset_stats()
    nothing = field_changes(scores, again.contacts)
    assert nothing.empty
    assert conn.write_fields(nothing).written == 0
    assert _writes(server) == {}


def test_one_invalid_record_does_not_lose_the_rest(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    conn.ensure_schema("en")
    result = conn.extract(None, datetime.now(UTC))
    contacts = result.contacts.head(10)
    scores = _scores(contacts)
    ghost = scores.iloc[[0]].assign(contact_id="999999")  # not in the account
    odd = scores.iloc[[1]].assign(contact_id=contacts.iloc[1]["contact_id"], segment="vip_plus")
    scores = pd.concat([scores.iloc[2:], ghost, odd], ignore_index=True)
    current = pd.concat([contacts, contacts.iloc[[0]].assign(contact_id="999999")])
    updates = field_changes(scores, current)
    server.reset_stats()
    report = conn.write_fields(updates)
    failed = {f["contact_id"]: f["reason"] for f in report.failed}
    assert set(failed) == {"999999", contacts.iloc[1]["contact_id"]}
    assert "NotFound" in failed["999999"]
    assert "vip_plus" in failed[contacts.iloc[1]["contact_id"]]
    assert report.written == 8
    # the batch amoCRM rejected whole was sent again without the bad element
    assert _writes(server) == {"PATCH /api/v4/contacts": 2}
    for cid in scores["contact_id"].iloc[:8]:
        values = server.state.contacts[int(cid)]["custom_fields_values"]
        assert any(v["field_code"] == "HEATSYNC_TEMPERATURE" for v in values)


def _tasks(contact_ids: list[str], owner: str, portal: str) -> pd.DataFrame:
    due = pd.Timestamp(datetime.now(UTC) + timedelta(hours=2))
    return pd.DataFrame(
        {
            "task_key": [f"{portal}:{c}:call_now:2026-05-01" for c in contact_ids],
            "portal": portal,
            "contact_id": contact_ids,
            "owner_id": owner,
            "rule": "call_now",
            "period": "2026-05-01",
            "due_at": due,
            "priority": "HIGH",
            "task_type": "CALL",
            "subject": "Позвонить сейчас",
            "body": "Горячий контакт: входящий звонок",
            "score": 80.0,
        }
    )


def _ours(server: AmoSandboxServer) -> list[dict[str, Any]]:
    return [t for t in server.state.tasks.values() if "[hs:" in t["text"]]


def test_a_task_create_whose_answer_is_lost_is_not_duplicated(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server, reconcile_wait_s=0.1))
    portal = f"amocrm-{conn.portal_info().portal_id}"
    owner = str(server.state.contacts[1002]["responsible_user_id"])
    tasks = _tasks(["1002", "1003", "1004"], owner, portal)
    server.set_faults(drop_after_apply_rate=1.0)
    report = conn.create_tasks(tasks)
    server.set_faults(drop_after_apply_rate=0.0)
    assert report.ok, report.failed
    assert set(report.created) == set(tasks["task_key"])
    assert server.stats()["dropped_after_apply"] == 1
    ours = _ours(server)
    assert len(ours) == 3  # applied once, found again, never sent twice
    by_id = {str(t["id"]): t for t in ours}
    for key, task_id in report.created.items():
        task = by_id[task_id]
        assert task_marker(key) in task["text"]
        assert task["entity_type"] == "contacts" and str(task["entity_id"]) == key.split(":")[1]
        assert task["responsible_user_id"] == int(owner)
        assert task["task_type_id"] == 1  # FOLLOW_UP "Связаться"
        assert task["text"].startswith("Позвонить сейчас")

    # a second run creates nothing; find_tasks and extract see them
    server.reset_stats()
    second = conn.create_tasks(tasks)
    assert second.created == {} and second.already_existed == report.created
    assert _writes(server) == {}
    keys = dict(zip(tasks["task_key"], tasks["contact_id"], strict=True))
    assert conn.find_tasks(keys) == report.created
    result = conn.extract(None, datetime.now(UTC) + timedelta(minutes=1))
    assert dict(zip(result.own_tasks["task_key"], result.own_tasks["task_id"], strict=True)) == (
        report.created
    )


def test_an_email_task_uses_the_accounts_letter_type(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    portal = f"amocrm-{conn.portal_info().portal_id}"
    tasks = _tasks(["1005"], str(server.state.contacts[1005]["responsible_user_id"]), portal)
    report = conn.create_tasks(tasks.assign(task_type="EMAIL"))
    assert report.ok
    (task,) = _ours(server)
    assert task["task_type_id"] == 2_800_001  # the account's custom "Письмо"


def test_a_field_create_whose_answer_is_lost_is_not_repeated(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server, reconcile_wait_s=0.05))
    server.set_faults(drop_after_apply_rate=1.0)
    created = conn.ensure_schema("ru")
    server.set_faults(drop_after_apply_rate=0.0)
    assert set(created) == CODES
    assert _writes(server) == {"POST /api/v4/contacts/custom_fields": 1}
    codes = [f["code"] for f in server.state.custom_fields["contacts"] if f.get("code")]
    assert len(codes) == len(set(codes))


def test_an_empty_segment_clears_the_field(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    conn.ensure_schema("en")
    contacts = conn.extract(None, datetime.now(UTC)).contacts.head(2)
    scores = _scores(contacts).assign(segment="key")
    assert conn.write_fields(field_changes(scores, contacts)).written == 2
    current = conn.extract(None, datetime.now(UTC)).contacts
    current = current[current["contact_id"].isin(contacts["contact_id"])]
    assert set(current["current_segment"]) == {"key"}
    updates = field_changes(scores.assign(segment=None), current)
    assert list(updates["changed_segment"]) == [True, True]
    assert conn.write_fields(updates).written == 2
    for cid in contacts["contact_id"]:
        values = server.state.contacts[int(cid)]["custom_fields_values"] or []
        assert not [v for v in values if v["field_code"] == "HEATSYNC_SEGMENT"]
        assert [v for v in values if v["field_code"] == "HEATSYNC_TEMPERATURE"]


def test_a_batch_refused_without_naming_an_element_is_bisected(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    conn.ensure_schema("ru")
    result = conn.extract(None, datetime.now(UTC))
    server.set_faults(batch_max=20)  # an account whose cap is below heatsync's 50
    report = conn.write_fields(field_changes(_scores(result.contacts), result.contacts))
    assert report.ok and report.written == 120
    # 50 → 400 "At most 20 elements", halves of 25 → 400, quarters of 12/13 pass
    assert server.stats()["by_route"]["PATCH /api/v4/contacts"] > 3
