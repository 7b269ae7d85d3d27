"""`HubSpotConnector.field_edits` against the sandbox over loopback: a rep's edit, another app's
edit, heatsync's own writes, the `since` bound, and batches of ≤ 50 when history is asked."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from connectors.base import FIELD_EDIT_COLUMNS
from connectors.http import ConnectorError
from tests.connectors.conftest import connector_for, needs_sandbox

pytestmark = needs_sandbox

BATCH_READ = "POST objects/contacts/batch/read"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _setup(server, n: int = 3):
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = [str(i) for i in server.state.order["contacts"][:n]]
    return hub, ids


def _write(hub, ids, temperature: str = "warm") -> None:
    report = hub.write_fields(
        pd.DataFrame([{"contact_id": i, "temperature": temperature, "score": 50} for i in ids])
    )
    assert report.ok and report.written == len(ids)


def test_rep_edit_is_a_person_with_user_id_and_time(server) -> None:
    hub, ids = _setup(server)
    since = datetime.now(UTC) - timedelta(seconds=1)
    _write(hub, ids)
    user = server.state.owners[0]["userId"]
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    server.edit_as_user(ids[0], "heatsync_temperature", "hot", user, at_ms=_ms(at))

    edits = hub.field_edits(ids, ["temperature", "score"], since)

    assert list(edits.columns) == list(FIELD_EDIT_COLUMNS)
    assert str(edits["changed_at"].dtype) == "datetime64[ns, UTC]"
    assert edits.to_dict("records") == [
        {
            "contact_id": ids[0],
            "field": "temperature",
            "value": "hot",
            "changed_at": pd.Timestamp(at),
            "source": "person",
            "by": str(user),
        }
    ]


def test_own_writes_are_not_returned(server) -> None:
    hub, ids = _setup(server)
    since = datetime.now(UTC) - timedelta(seconds=1)
    _write(hub, ids, "warm")
    _write(hub, ids, "hot")
    assert hub.field_edits(ids, ["temperature", "score", "updated_at"], since).empty


def test_own_write_after_a_rep_edit_supersedes_it(server) -> None:
    hub, ids = _setup(server, 1)
    since = datetime.now(UTC) - timedelta(minutes=5)
    server.edit_as_user(ids[0], "heatsync_temperature", "cold", 1_000_001, at_ms=_ms(since) + 1000)
    assert len(hub.field_edits(ids, ["temperature"], since)) == 1
    _write(hub, ids, "hot")
    assert hub.field_edits(ids, ["temperature"], since).empty


def test_other_integration_edit_is_an_integration(server) -> None:
    hub, ids = _setup(server)
    since = datetime.now(UTC) - timedelta(seconds=1)
    _write(hub, ids)
    time.sleep(0.01)
    server.edit_as_integration(ids[1], "heatsync_score", "90", 4_242_424, label="Other app")
    server.edit_as_integration(ids[2], "heatsync_next_touch_due", "2026-04-01", 4_242_424)

    edits = hub.field_edits(ids, ["score", "next_touch_due"], since)

    assert edits[["contact_id", "field", "value", "source", "by"]].to_dict("records") == [
        {
            "contact_id": ids[1],
            "field": "score",
            "value": "90",
            "source": "integration",
            "by": "4242424",
        },
        {
            "contact_id": ids[2],
            "field": "next_touch_due",
            "value": "2026-04-01",
            "source": "integration",
            "by": "4242424",
        },
    ]


def test_edit_older_than_since_is_not_returned(server) -> None:
    hub, ids = _setup(server, 1)
    now = datetime.now(UTC)
    server.edit_as_user(ids[0], "heatsync_segment", "key", 1_000_001, at_ms=_ms(now) - 3_600_000)
    assert hub.field_edits(ids, ["segment"], now - timedelta(minutes=10)).empty
    earlier = hub.field_edits(ids, ["segment"], now - timedelta(hours=2))
    assert earlier[["field", "value", "source"]].to_dict("records") == [
        {"field": "segment", "value": "key", "source": "person"}
    ]


def test_cleared_value_is_an_empty_text(server) -> None:
    hub, ids = _setup(server, 1)
    since = datetime.now(UTC) - timedelta(seconds=1)
    _write(hub, ids)
    time.sleep(0.01)
    server.edit_as_user(ids[0], "heatsync_temperature", "", 1_000_002)
    edits = hub.field_edits(ids, ["temperature"], since)
    assert edits["value"].tolist() == [""] and edits["by"].tolist() == ["1000002"]


def test_many_contacts_are_read_in_batches_of_fifty(server) -> None:
    hub, ids = _setup(server, 120)
    since = datetime.now(UTC) - timedelta(seconds=1)
    _write(hub, ids)
    time.sleep(0.01)
    for i in ids[::2]:
        server.edit_as_user(i, "heatsync_temperature", "cold", 1_000_003)
    server.reset_stats()

    edits = hub.field_edits([*ids, "999999999"], ["temperature", "score"], since)

    assert sorted(edits["contact_id"]) == sorted(ids[::2])
    assert set(edits["field"]) == {"temperature"}
    routes = server.stats()["by_route"]
    assert routes[BATCH_READ] == 3  # 121 ids, 50 per request
    assert sum(routes.values()) == 4  # and one token introspection, kept for later calls
    hub.field_edits(ids[:10], ["temperature"], since)
    assert sum(server.stats()["by_route"].values()) == 5


def test_nothing_asked_sends_nothing(server) -> None:
    hub = connector_for(server)
    server.reset_stats()
    assert hub.field_edits([], ["temperature"], datetime.now(UTC)).empty
    assert server.stats()["requests"] == 0
    with pytest.raises(ValueError, match="not heatsync fields"):
        hub.field_edits(["1"], ["firstname"], datetime.now(UTC))


def test_without_introspection_own_writes_are_told_by_updated_at(server, monkeypatch) -> None:
    hub, ids = _setup(server, 2)

    def refused() -> dict:
        raise ConnectorError("introspection refused")

    monkeypatch.setattr(hub.client, "token_info", refused)
    since = datetime.now(UTC) - timedelta(seconds=1)
    _write(hub, ids)
    time.sleep(0.01)
    server.edit_as_user(ids[1], "heatsync_score", "77", 1_000_001)
    edits = hub.field_edits(ids, ["temperature", "score"], since)
    assert edits[["contact_id", "field", "source"]].to_dict("records") == [
        {"contact_id": ids[1], "field": "score", "source": "person"}
    ]
