"""The search API's 10,000-result cap never loses or duplicates records in an incremental pull."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.hubspot.settings import CURSOR_OBJECTS
from tests.connectors.conftest import SANDBOX, connector_for, needs_sandbox, serve

if SANDBOX:
    from sandbox.hubspot.state import HubSpotState

pytestmark = needs_sandbox

BATCH_UPDATE_AT = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


def _big_state(same_stamp: int, spread: int) -> tuple[HubSpotState, list[str]]:
    """`same_stamp` contacts modified in the same millisecond (a month-end batch update) plus
    `spread` contacts modified one per second over the following minutes."""
    state = HubSpotState()
    stamp = int(BATCH_UPDATE_AT.timestamp() * 1000)
    ids = []
    for i in range(same_stamp + spread):
        updated = stamp if i < same_stamp else stamp + (i - same_stamp + 1) * 1000
        # ids deliberately not in modification order
        obj_id = 10_000_000 + (i * 7919) % (same_stamp + spread)
        state.add(
            "contacts",
            {"firstname": "Bulk", "lastname": str(i), "email": f"bulk{i}@example.com"},
            stamp - 86_400_000,
            updated,
            obj_id=obj_id,
        )
        ids.append(str(obj_id))
    return state, ids


def test_window_over_10k_is_fully_extracted_without_duplicates() -> None:
    state, ids = _big_state(same_stamp=10_100, spread=500)
    with serve(state, search_per_second=50, burst_limit=1000) as srv:
        hub = connector_for(srv, search_per_second=50, burst_limit=1000)
        cursors = {t: (BATCH_UPDATE_AT - timedelta(days=1)).isoformat() for t in CURSOR_OBJECTS}
        result = hub.extract(cursors, BATCH_UPDATE_AT + timedelta(hours=1))
        got = result.contacts["contact_id"].tolist()
        assert len(got) == len(set(got))  # no duplicates
        assert set(got) == set(ids)  # no loss
        searches = srv.stats()["by_route"].get("POST objects/contacts/search", 0)
        # the window was bisected, and the one-millisecond batch of 10,100 was walked by
        # hs_object_id pages (never past the cap, which the sandbox answers with 400)
        assert searches > len(ids) // 200
