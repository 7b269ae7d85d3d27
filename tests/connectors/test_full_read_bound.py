"""The HubSpot full extract's walk stays a few pages ahead of the mapping (connectors.fanout.Gate
in connectors.hubspot.full_read), against the sandbox over HTTP: with a mapping slower than the
reads, the contacts pages listed never run more than `read_workers` (+1, the page waiting for
its turn) past the pages the mapping took, and the rows are those of an unhurried extract."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.fanout import Fanout
from connectors.hubspot.extract import _Extract
from connectors.hubspot.full_read import FullRead, Seen
from sandbox.hubspot.render import generate_state
from tests.connectors.conftest import connector_for, needs_sandbox, serve

pytestmark = needs_sandbox

BURST = 10_000  # the reads are not paced: only the gate holds the walk back


class ListedPages:
    """Counts the answered pages of the live contacts list (the real session sends them)."""

    def __init__(self, session: Any, path: str) -> None:
        self.path = path
        self.count = 0
        self._lock = threading.Lock()
        self._send = session.request
        session.request = self.request

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        answer = self._send(method, url, *args, **kwargs)
        params = kwargs.get("params") or {}
        if url.endswith(self.path) and params.get("archived") == "false":
            with self._lock:
                self.count += 1
        return answer


class SlowMapping(FullRead):
    """Maps each page of contacts after a pause; notes how far the walk had run ahead."""

    listed: ListedPages
    most_ahead = 0
    taken = 0

    def _contacts(self, page: list[dict[str, Any]]) -> None:
        self.taken += 1
        self.most_ahead = max(self.most_ahead, self.listed.count - self.taken)
        time.sleep(0.1)
        super()._contacts(page)


@pytest.fixture(scope="module")
def big_state() -> Any:
    return generate_state(1_500, seed=11)


def _read(srv: Any, workers: int) -> tuple[SlowMapping, _Extract]:
    connector = connector_for(srv, read_workers=workers, burst_limit=BURST)
    run = _Extract(connector, None, datetime.now(UTC))
    connector.portal_info()
    with Fanout(workers) as fanout:
        run.fanout = fanout
        read = SlowMapping(run, fanout)
        read.listed = ListedPages(
            connector.client.http.session, connector.settings.objects_path("contacts")
        )
        read.removed = read.read()
    return read, run


def test_the_walk_waits_for_the_mapping(big_state: Any) -> None:
    with serve(big_state, burst_limit=BURST) as srv:
        bounded, run = _read(srv, workers=2)
        alone, alone_run = _read(srv, workers=1)
    assert bounded.taken >= 15
    assert bounded.most_ahead <= 2 + 1
    assert bounded.walk.ahead.limit == 2
    assert bounded.walk.ahead.peak <= 2
    # same rows, quarantine and warnings as one request at a time (no bound there)
    assert alone.walk.ahead.limit is None
    for table in ("contacts", "activities", "deals", "own_tasks"):
        assert getattr(bounded, table) == getattr(alone, table), table
    assert bounded.removed == alone.removed
    assert run.warnings == alone_run.warnings
    assert run.quarantine == alone_run.quarantine


def test_seen_ids_are_new_once_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Seen, "MERGE", 4)
    seen = Seen()
    assert seen.first(["12", "7", "12", "x7", "007"]) == ["12", "7", "x7", "007"]
    assert seen.first(["7", "99", "x7", "3", "007", "5"]) == ["99", "3", "5"]  # merged after
    assert seen.first(["3", "12", "4", "99999999999999999999", "4"]) == [
        "4",
        "99999999999999999999",
    ]
    assert len(seen) == 9
    assert seen.first([]) == []
