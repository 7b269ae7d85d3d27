"""`AmoCrmConnector.field_edits` against the amoCRM sandbox over loopback: a rep's edit, another
integration's edit, heatsync's own writes (the token's user), the `since` bound, ≤ 10 contacts per
events query."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from connectors.amocrm import AmoCrmConnector
from connectors.base import FIELD_EDIT_COLUMNS
from sandbox.amocrm.account import ADMIN_USER_ID
from sandbox.amocrm.server import AmoSandboxServer
from tests.connectors.amocrm.conftest import llt_settings

EVENTS = "GET /api/v4/events"


def _rep(server: AmoSandboxServer) -> int:
    return next(u["id"] for u in server.state.users if u["id"] != ADMIN_USER_ID)


def _setup(server: AmoSandboxServer, n: int = 3, **settings) -> tuple[AmoCrmConnector, list[str]]:
    conn = AmoCrmConnector(llt_settings(server, **settings))
    conn.ensure_schema("en")
    for definition in server.state.custom_fields["contacts"]:
        if str(definition.get("code") or "").startswith("HEATSYNC_"):
            definition["is_api_only"] = False  # an admin lets reps edit heatsync's fields
    ids = [str(i) for i in sorted(server.state.contacts)[:n]]
    return conn, ids


def _write(conn: AmoCrmConnector, ids: list[str], temperature: str = "warm") -> None:
    rows = [{"contact_id": i, "temperature": temperature, "score": 50} for i in ids]
    report = conn.write_fields(pd.DataFrame(rows))
    assert report.ok and report.written == len(ids)


def _since() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)


def test_rep_edit_is_a_person_with_user_id_and_time(server: AmoSandboxServer) -> None:
    conn, ids = _setup(server)
    since = _since()
    _write(conn, ids)
    at = int(time.time()) + 2
    rep = _rep(server)
    server.edit_as_user(ids[0], "HEATSYNC_TEMPERATURE", "hot", rep, at_s=at)

    edits = conn.field_edits(ids, ["temperature", "score"], since)

    assert list(edits.columns) == list(FIELD_EDIT_COLUMNS)
    assert str(edits["changed_at"].dtype) == "datetime64[ns, UTC]"
    assert edits.to_dict("records") == [
        {
            "contact_id": ids[0],
            "field": "temperature",
            "value": "hot",
            "changed_at": pd.Timestamp(at, unit="s", tz="UTC"),
            "source": "person",
            "by": str(rep),
        }
    ]


def test_own_writes_are_not_returned(server: AmoSandboxServer) -> None:
    conn, ids = _setup(server)
    since = _since()
    _write(conn, ids, "warm")
    _write(conn, ids, "hot")
    assert conn.field_edits(ids, ["temperature", "score", "updated_at"], since).empty


def test_own_write_after_a_rep_edit_supersedes_it(server: AmoSandboxServer) -> None:
    conn, ids = _setup(server, 1)
    since = _since() - timedelta(minutes=5)
    server.edit_as_user(
        ids[0], "HEATSYNC_TEMPERATURE", "cold", _rep(server), at_s=int(since.timestamp()) + 60
    )
    assert len(conn.field_edits(ids, ["temperature"], since)) == 1
    _write(conn, ids, "hot")
    assert conn.field_edits(ids, ["temperature"], since).empty


def test_other_integration_edit_is_an_integration(server: AmoSandboxServer) -> None:
    robot = 7_999_999
    conn, ids = _setup(server, integration_user_ids=(robot,))
    since = _since()
    _write(conn, ids)
    at = int(time.time()) + 2
    server.edit_as_integration(ids[1], "HEATSYNC_SCORE", "90", at_s=at)
    server.edit_as_integration(
        ids[2], "HEATSYNC_NEXT_TOUCH_DUE", "2026-06-01T00:00:00+03:00", robot, at_s=at
    )

    edits = conn.field_edits(ids, ["score", "next_touch_due"], since)

    assert edits[["contact_id", "field", "value", "source", "by"]].to_dict("records") == [
        {"contact_id": ids[1], "field": "score", "value": "90", "source": "integration", "by": ""},
        {
            "contact_id": ids[2],
            "field": "next_touch_due",
            "value": "2026-06-01",
            "source": "integration",
            "by": str(robot),
        },
    ]


def test_edit_older_than_since_is_not_returned(server: AmoSandboxServer) -> None:
    conn, ids = _setup(server, 1)
    now = int(time.time())
    server.edit_as_user(ids[0], "HEATSYNC_SEGMENT", "key", _rep(server), at_s=now - 3600)
    assert conn.field_edits(ids, ["segment"], datetime.now(UTC) - timedelta(minutes=10)).empty
    earlier = conn.field_edits(ids, ["segment"], datetime.now(UTC) - timedelta(hours=2))
    assert earlier[["field", "value", "source"]].to_dict("records") == [
        {"field": "segment", "value": "key", "source": "person"}
    ]


def test_cleared_value_is_an_empty_text(server: AmoSandboxServer) -> None:
    conn, ids = _setup(server, 1)
    since = _since()
    _write(conn, ids)
    server.edit_as_user(
        ids[0], "HEATSYNC_TEMPERATURE", None, _rep(server), at_s=int(time.time()) + 2
    )
    edits = conn.field_edits(ids, ["temperature"], since)
    assert edits[["value", "source"]].to_dict("records") == [{"value": "", "source": "person"}]


def test_token_user_editing_by_hand_is_returned_as_unknown(server: AmoSandboxServer) -> None:
    conn, ids = _setup(server, 1, token_user_edits_by_hand=True)
    since = _since()
    _write(conn, ids)
    edits = conn.field_edits(ids, ["temperature", "score"], since)
    assert edits[["field", "value", "source", "by"]].to_dict("records") == [
        {"field": "score", "value": "50", "source": "unknown", "by": str(ADMIN_USER_ID)},
        {"field": "temperature", "value": "warm", "source": "unknown", "by": str(ADMIN_USER_ID)},
    ]


def test_many_contacts_are_read_ten_per_query(server: AmoSandboxServer) -> None:
    conn, ids = _setup(server, 25)
    since = _since()
    _write(conn, ids)
    at = int(time.time()) + 2
    for i in ids[::2]:
        server.edit_as_user(i, "HEATSYNC_TEMPERATURE", "cold", _rep(server), at_s=at)
    server.reset_stats()

    edits = conn.field_edits(ids, ["temperature", "score"], since)

    assert sorted(edits["contact_id"]) == sorted(ids[::2])
    assert server.stats()["by_route"].get(EVENTS) == 3  # 25 contacts, 10 per query


def test_nothing_asked_sends_nothing(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    server.reset_stats()
    assert conn.field_edits([], ["temperature"], datetime.now(UTC)).empty
    assert server.stats()["requests"] == 0
    with pytest.raises(ValueError, match="not heatsync fields"):
        conn.field_edits(["1"], ["name"], datetime.now(UTC))
