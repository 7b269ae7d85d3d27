"""`HubSpotConnector.signals_since` against the sandbox: a logged call, a meeting booked and a
form submission are signals (one contacts search); heatsync's own field writes and tasks are not;
nothing before `since` is."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from sandbox.hubspot import history
from sandbox.hubspot.state import iso_ms, now_ms
from tests.connectors.conftest import connector_for, needs_sandbox

pytestmark = needs_sandbox
CALL_TO_CONTACT = 194
MEETING_TO_CONTACT = 200


def _engagement(hub, kind: str, contact: str, type_id: int, props: dict[str, str]) -> None:
    hub.client.http.request(
        "POST",
        hub.settings.objects_path(kind),
        json_body={
            "properties": {"hs_timestamp": iso_ms(now_ms()), **props},
            "associations": [
                {
                    "to": {"id": contact},
                    "types": [
                        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
                    ],
                }
            ],
        },
        write=True,
    )


def _form_submission(server, contact: str) -> None:
    """What HubSpot does when a contact submits a form: its conversion roll-ups move."""
    with server.lock:
        rec = server.state.get("contacts", contact)
        now = now_ms()
        values = {"recent_conversion_date": iso_ms(now), "num_conversion_events": "1"}
        history.record(server.state, "contacts", rec, values, now, {"sourceType": "FORM"})
        server.state.set_props("contacts", rec, values)
        server.state.touch("contacts", rec, now)


def test_calls_meetings_and_forms_are_signals_heatsyncs_writes_are_not(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = [str(i) for i in server.state.order["contacts"][:5]]
    since = datetime.now(UTC) - timedelta(milliseconds=1)
    time.sleep(0.01)
    server.reset_stats()

    # heatsync's own writes: fields and a task on contact 4
    hub.write_fields(pd.DataFrame([{"contact_id": ids[4], "temperature": "hot", "score": 90}]))
    assert hub.signals_since(since).empty

    _engagement(hub, "calls", ids[0], CALL_TO_CONTACT, {"hs_call_direction": "INBOUND"})
    _engagement(hub, "meetings", ids[1], MEETING_TO_CONTACT, {"hs_meeting_title": "Demo"})
    _form_submission(server, ids[2])
    server.reset_stats()
    signals = hub.signals_since(since)

    assert sorted(signals.index) == sorted(ids[:3])
    assert str(signals.dtype) == "datetime64[ns, UTC]"
    assert (signals > pd.Timestamp(since)).all()
    assert server.stats()["requests"] == 1  # one search, whatever the number of signals
    # nothing after a later moment
    assert hub.signals_since(datetime.now(UTC) + timedelta(seconds=1)).empty
