"""Concurrent extract (connectors.fanout) against both sandboxes over loopback HTTP, with latency:
the same result as reading one request at a time, several requests in flight, and no 429 from
the server at the default settings, the search budget included. HubSpot's full extract reads
activities and deals through the contacts (connectors.hubspot.full_read): no list but the
contacts', records linked to contacts on several pages, the same rows as listing gave."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import requests

from connectors.amocrm import AmoCrmConnector
from connectors.base import ExtractResult
from connectors.fanout import InOrder, done
from connectors.http import PermissionDeniedError
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.settings import REQUIRED_SCOPES, TASK_KEY_PROPERTY
from sandbox.amocrm.render import generate_state as amo_generate_state
from sandbox.hubspot.server import SandboxServer
from sandbox.hubspot.state import now_ms
from tests.connectors.amocrm.conftest import ANCHOR as AMO_ANCHOR
from tests.connectors.amocrm.conftest import llt_settings
from tests.connectors.amocrm.conftest import serve as amo_serve
from tests.connectors.conftest import connector_for, needs_sandbox, serve

pytestmark = needs_sandbox


class InFlight:
    """Counts the requests a connector's session has in flight (the real session sends them)."""

    def __init__(self, session: Any) -> None:
        self.now = self.peak = 0
        self._lock = threading.Lock()
        self._send: Callable[..., Any] = session.request
        session.request = self.request

    def request(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return self._send(*args, **kwargs)
        finally:
            with self._lock:
                self.now -= 1


def assert_same(a: ExtractResult, b: ExtractResult) -> None:
    for table in ("contacts", "activities", "deals", "quarantine", "own_tasks"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), obj=table)
    assert a.removed_contact_ids == b.removed_contact_ids
    assert a.cursors == b.cursors
    assert a.full == b.full
    assert a.warnings == b.warnings


# -- HubSpot ------------------------------------------------------------------------------------


def _hub(srv: SandboxServer, workers: int, **extra: Any) -> tuple[HubSpotConnector, InFlight]:
    hub = connector_for(srv, read_workers=workers, **extra)
    return hub, InFlight(hub.client.http.session)


def _touch(srv: SandboxServer) -> None:
    """Change three records of every type, so that an incremental extract searches each."""
    with srv.lock:
        for object_type in ("contacts", "calls", "emails", "meetings", "notes", "tasks", "deals"):
            for record in list(srv.state.iter_live(object_type))[:3]:
                srv.state.touch(object_type, record, now_ms())


def test_hubspot_concurrent_extract_equals_sequential(base_state: Any) -> None:
    with serve(base_state.copy(), latency_ms=15) as srv:
        until = datetime.now(UTC)
        seq, seq_flight = _hub(srv, 1)
        full_seq = seq.extract(None, until)
        con, con_flight = _hub(srv, 8)
        full_con = con.extract(None, until)
        assert_same(full_seq, full_con)
        assert len(full_con.contacts) > 200 and len(full_con.activities) > 1000
        assert seq_flight.peak == 1
        assert 1 < con_flight.peak <= 8 + 1  # the calling thread reads the pipelines
        assert con.stats.requests == seq.stats.requests

        _touch(srv)
        later = datetime.now(UTC) + timedelta(milliseconds=5)
        inc_seq = seq.extract(full_seq.cursors, later)
        inc_con = con.extract(full_seq.cursors, later)
        assert_same(inc_seq, inc_con)
        assert not inc_con.full and len(inc_con.contacts) >= 1
        assert srv.stats()["429"] == 0
        assert seq.stats.rate_limited == con.stats.rate_limited == 0


def _link_across_pages(srv: SandboxServer) -> tuple[str, list[str]]:
    """Associate one e-mail of a first-page contact with two contacts of later pages too; its id
    and its contacts in list order."""
    with srv.lock:
        contacts = [r.id for r in srv.state.iter_live("contacts")]
        email = next(iter(srv.state.iter_live("emails")))
        first = next(iter(srv.state.associations("emails", email.id, "contacts")))
        assert first in contacts[:100]
        later = [contacts[150], contacts[250]]
        for contact_id in later:
            srv.state.associate("emails", email.id, "contacts", contact_id, 198)
    return str(email.id), [str(first), *map(str, later)]


def test_hubspot_full_extract_reads_through_the_contacts(base_state: Any) -> None:
    """Only the contacts are listed (no activity or deal list paces the extract); the other
    records are read by id, an e-mail linked to contacts on three pages gives a row for each
    (read once per page that links it, quarantined at most once), and eight threads give the
    one-at-a-time result with the same requests."""
    with serve(base_state.copy(), latency_ms=15) as srv:
        email_id, linked = _link_across_pages(srv)
        until = datetime.now(UTC)
        results, routes = [], []
        for workers in (1, 8):
            srv.reset_stats()
            hub, _ = _hub(srv, workers)
            results.append(hub.extract(None, until))
            routes.append(srv.stats()["by_route"])
        assert_same(*results)
        assert routes[0] == routes[1]
        listed = {k for k in routes[1] if k.startswith("GET objects/")}
        assert listed == {"GET objects/contacts"}
        for object_type in ("calls", "emails", "meetings", "notes", "tasks", "deals"):
            assert routes[1][f"POST objects/{object_type}/batch/read"] >= 1
            assert routes[1][f"POST associations/contacts/{object_type}/batch/read"] >= 3
        full = results[1]
        rows = full.activities[full.activities["crm_id"] == email_id]
        assert sorted(rows["contact_id"]) == sorted(linked)
        assert rows["activity_id"].tolist() == [f"email:{email_id}:{c}" for c in linked]
        assert full.warnings == {"birthday_unparsed": 1, "quarantined": 2}
        assert srv.stats()["429"] == 0


def test_hubspot_full_extract_reads_a_record_again_only_for_later_links(base_state: Any) -> None:
    """The planted call that cannot be mapped, linked to a contact on the last page too: it is
    read twice (once per page that links it) but quarantined once; a task of heatsync's own
    linked to two pages' contacts is one own task."""
    with serve(base_state.copy()) as srv:
        planted = srv.state.meta["planted"]["bad_duration_call"]
        with srv.lock:
            contacts = [r.id for r in srv.state.iter_live("contacts")]
            srv.state.associate("calls", int(planted), "contacts", contacts[-1], 194)
            now = now_ms()
            key = f"hubspot-24681357:{contacts[0]}:call_now:2026-03-02"
            task = srv.state.add(
                "tasks",
                {
                    "hs_task_subject": "Call now",
                    "hs_task_status": "NOT_STARTED",
                    "hs_timestamp": "2026-03-02T09:00:00.000Z",
                    TASK_KEY_PROPERTY: key,
                },
                now,
                now,
            )
            for contact_id in (contacts[0], contacts[-1]):
                srv.state.associate("tasks", task.id, "contacts", contact_id, 204)
        hub = connector_for(srv, read_workers=8)
        full = hub.extract(None, datetime.now(UTC))
        bad = full.quarantine[full.quarantine["object_type"] == "calls"]
        assert bad["object_id"].tolist() == [planted]
        assert planted not in set(full.activities["crm_id"])
        assert full.own_tasks["task_key"].tolist() == [key]
        assert full.own_tasks["task_id"].tolist() == [str(task.id)]
        reads = srv.stats()["by_route"]
        assert reads["POST objects/calls/batch/read"] >= 2


def test_hubspot_concurrency_stays_within_both_budgets(base_state: Any) -> None:
    """A small burst budget and HubSpot's search budget, eight threads: the client's pace keeps
    the server from ever answering 429, for list, association and search requests alike."""
    limits = dict(burst_limit=30, burst_window_s=2.0, search_per_second=3)
    with serve(base_state.copy(), latency_ms=10, **limits) as srv:
        hub, flight = _hub(srv, 8, burst_margin=2, **limits)
        full = hub.extract(None, datetime.now(UTC))
        _touch(srv)
        srv.reset_stats()
        searches = 0
        for _ in range(2):  # seven types searched at once, twice: beyond 3 searches a second
            hub.extract(full.cursors, datetime.now(UTC) + timedelta(milliseconds=5))
            searches = sum(n for k, n in srv.stats()["by_route"].items() if k.endswith("/search"))
        assert searches >= 14
        assert flight.peak > 1
        assert hub.stats.requests > 60  # more than the budget of one window
        assert srv.stats()["429"] == 0
        assert hub.stats.rate_limited == 0


# -- amoCRM -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def amo_json() -> dict[str, Any]:
    return amo_generate_state(150, seed=11, anchor=AMO_ANCHOR).to_json()


@contextmanager
def amo_server(amo_json: dict[str, Any], **options: Any) -> Iterator[Any]:
    from sandbox.amocrm.state import AmoState

    with amo_serve(AmoState.from_json(amo_json), **options) as srv:
        yield srv


def _amo(srv: Any, workers: int, **extra: Any) -> tuple[AmoCrmConnector, InFlight]:
    # small pages, so that every list has several and the pages are read ahead; the client's
    # window on the sandbox's faster clock
    window = 1.05 / srv.options.time_scale
    conn = AmoCrmConnector(
        llt_settings(srv, read_workers=workers, page_size=20, rate_window_s=window, **extra)
    )
    return conn, InFlight(conn.client.http.session)


@pytest.mark.parametrize("api_filter", [True, False], ids=["filtered", "newest-first"])
def test_amocrm_concurrent_extract_equals_sequential(
    amo_json: dict[str, Any], api_filter: bool
) -> None:
    # 300 ms a request on a clock ten times faster: 30 ms, 7 requests per 0.1 s
    with amo_server(amo_json, latency_ms=300, time_scale=10) as srv:
        until = datetime.now(UTC)
        seq, seq_flight = _amo(srv, 1, api_filter=api_filter)
        full_seq = seq.extract(None, until)
        con, con_flight = _amo(srv, 4, api_filter=api_filter)
        full_con = con.extract(None, until)
        assert_same(full_seq, full_con)
        assert len(full_con.contacts) > 100 and len(full_con.activities) > 100
        assert seq_flight.peak == 1
        assert 1 < con_flight.peak <= 4 + 1

        with srv.lock:  # a few contacts change: the incremental window holds them
            for raw in list(srv.state.contacts.values())[:30]:
                raw["updated_at"] = int(until.timestamp()) + 1
        later = until + timedelta(seconds=2)
        inc_seq = seq.extract(full_seq.cursors, later)
        inc_con = con.extract(full_seq.cursors, later)
        assert_same(inc_seq, inc_con)
        assert len(inc_con.contacts) >= 30
        assert srv.stats()["429"] == 0 and srv.stats()["403"] == 0
        assert seq.stats.rate_limited == con.stats.rate_limited == 0


def test_amocrm_concurrency_stays_within_seven_per_second(amo_json: dict[str, Any]) -> None:
    """Eight threads reading ahead at amoCRM's 7 requests a second (on a clock ten times
    faster): no 429, so no block."""
    with amo_server(amo_json, latency_ms=300, time_scale=10) as srv:
        conn, flight = _amo(srv, 8)
        conn.extract(None, datetime.now(UTC))
        assert conn.stats.requests > 30  # several windows of the budget
        assert flight.peak > 1
        assert srv.stats()["429"] == 0 and srv.stats()["403"] == 0
        assert conn.stats.rate_limited == 0


def test_hubspot_a_failing_read_stops_the_others(base_state: Any) -> None:
    """The deals refused (a missing scope) while the other types are being read: the extract
    raises that error, and no thread of it sends anything afterwards."""
    scopes = tuple(s for s in REQUIRED_SCOPES if s != "crm.objects.deals.read")
    with serve(base_state.copy(), latency_ms=15, scopes=scopes) as srv:
        hub, _ = _hub(srv, 8)
        with pytest.raises(PermissionDeniedError) as info:
            hub.extract(None, datetime.now(UTC))
        assert "crm.objects.deals.read" in str(info.value)
        sent = srv.stats()["requests"]
        time.sleep(0.3)
        assert srv.stats()["requests"] == sent
        assert sent < 40  # the other lists stopped at their next page


def test_hubspot_full_extract_pages_a_contacts_many_associations(base_state: Any) -> None:
    """A contact with more e-mails than one association answer holds (500): every one of them is
    read and becomes a row."""
    with serve(base_state.copy()) as srv:
        with srv.lock:
            contact_id = next(iter(srv.state.iter_live("contacts"))).id
            now = now_ms()
            added = []
            for k in range(620):
                props = {
                    "hs_timestamp": "2026-02-01T10:00:00.000Z",
                    "hs_email_direction": "EMAIL",
                    "hs_email_subject": f"Follow-up {k}",
                }
                email = srv.state.add("emails", props, now, now)
                srv.state.associate("emails", email.id, "contacts", contact_id, 198)
                added.append(f"email:{email.id}:{contact_id}")
            pages = -(-len(list(srv.state.iter_live("contacts"))) // 100)
        full = connector_for(srv, read_workers=8).extract(None, datetime.now(UTC))
        assert set(added) <= set(full.activities["activity_id"])
        # one read per page of contacts, and one more for the rest of that contact's e-mails
        assert srv.stats()["by_route"]["POST associations/contacts/emails/batch/read"] == pages + 1


def test_in_order_handles_results_in_the_order_added_whatever_finishes_first() -> None:
    """fanout.InOrder: the handlers run in the order the futures were added, each as soon as it
    and every earlier one are done, whichever finished first; a failure stops the series."""
    seen: list[int] = []
    errors: list[BaseException] = []
    order = InOrder(errors.append)
    futures: list[Future[int]] = [Future() for _ in range(4)]
    for future in futures:
        order.add(future, seen.append)
    futures[2].set_result(2)
    futures[1].set_result(1)
    assert seen == []  # the first is not in yet
    futures[0].set_result(0)
    assert seen == [0, 1, 2]
    order.add(done(4), seen.append)
    assert seen == [0, 1, 2]  # waits for the fourth
    futures[3].set_exception(RuntimeError("refused"))
    assert seen == [0, 1, 2] and [str(e) for e in errors] == ["refused"]
    order.add(done(5), seen.append)
    assert seen == [0, 1, 2] and len(errors) == 1


def test_time_scale_shortens_the_sandbox_windows(base_state: Any) -> None:
    """time_scale=10: HubSpot's 5 per 10 s become 5 per second, and 300 ms of latency 30 ms."""
    with serve(base_state.copy(), burst_limit=5, latency_ms=300, time_scale=10) as srv:
        session = requests.Session()
        url = f"{srv.base_url}/crm/v3/objects/contacts"
        headers = {"Authorization": f"Bearer {srv.token}"}
        start = time.perf_counter()
        codes = [session.get(url, headers=headers, timeout=5).status_code for _ in range(6)]
        assert time.perf_counter() - start < 6 * 0.3  # each well under the unscaled latency
        assert codes == [200] * 5 + [429]
        time.sleep(1.05)
        assert session.get(url, headers=headers, timeout=5).status_code == 200
