"""HubSpot's search budget (5 requests/s per account) holds whatever the arrival jitter."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from connectors.http import SlidingWindow
from connectors.hubspot.settings import CURSOR_OBJECTS
from tests.connectors.conftest import connector_for, needs_sandbox, serve

pytestmark = needs_sandbox


def _cursors(now: datetime) -> dict[str, str]:
    return {t: (now - timedelta(minutes=5)).isoformat() for t in CURSOR_OBJECTS}


def test_search_burst_over_every_object_type_gets_no_429(base_state) -> None:
    # requests reach the server 0-25 ms after they leave: a window counted from the send time
    # lets the 6th search of a burst (tasks/search) arrive inside the first one's second
    with serve(base_state.copy(), search_per_second=5, latency_jitter_ms=25, seed=3) as srv:
        hub = connector_for(srv, max_attempts=1)
        now = datetime.now(UTC)
        for _ in range(3):
            hub.extract(_cursors(now), now)
        routes = srv.stats()["by_route"]
        searches = {k: v for k, v in routes.items() if k.endswith("/search")}
        assert searches["POST objects/tasks/search"] == 3
        assert sum(searches.values()) == 3 * len(CURSOR_OBJECTS)
        assert srv.stats()["429"] == 0 and hub.stats.rate_limited == 0


def test_connectors_of_one_account_share_the_search_budget(base_state) -> None:
    # each pipeline step makes its own connector; the account's budget is one
    with serve(base_state.copy(), search_per_second=5) as srv:
        now = datetime.now(UTC)
        for _ in range(3):
            connector_for(srv, max_attempts=1).extract(_cursors(now), now)
        assert srv.stats()["429"] == 0


def test_a_held_slot_expires_a_window_after_the_request_completes() -> None:
    window = SlidingWindow(limit=1, window_s=0.2)
    with window.hold():
        time.sleep(0.15)  # a slow request
    start = time.monotonic()
    window.acquire()
    assert time.monotonic() - start >= 0.19
    # a slot in flight is never free, however long it takes
    held = threading.Event()
    done = threading.Event()

    def slow() -> None:
        with window.hold():
            held.set()
            done.wait(5)

    thread = threading.Thread(target=slow)
    time.sleep(0.21)
    thread.start()
    held.wait(5)
    blocked = threading.Thread(target=window.acquire)
    blocked.start()
    blocked.join(0.4)
    assert blocked.is_alive()
    done.set()
    thread.join(5)
    blocked.join(5)
    assert not blocked.is_alive()
