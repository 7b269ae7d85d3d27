"""The hot-lead fast lane on the sandboxes: the hot_signals sensor sees a form submission asking
for a quote (HubSpot) or an inbound call (amoCRM), the hot_lane run makes the contact hot in the
CRM and creates its call-now task for the owner, and the next daily run sends nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import main
from pipelines.definitions import build_defs
from pipelines.store import PortalStore
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as generate_amocrm
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.telephony import log_inbound_call
from sandbox.hubspot import history
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state, iso_ms, now_ms

PORTAL = "default"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(generate_state(200, seed=8), SandboxOptions()) as srv:
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        monkeypatch.setenv("HUBSPOT_BASE_URL", srv.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", srv.token)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("HEATSYNC_PORTALS", raising=False)
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


def _submit_quote_request(server: SandboxServer, contact_id: str) -> None:
    """A form submission asking for a quote, as HubSpot records it on the contact."""
    with server.lock:
        rec = server.state.get("contacts", contact_id)
        now = now_ms()
        values = {
            "recent_conversion_date": iso_ms(now),
            "recent_conversion_event_name": "Request a quote",
            "message": "Please send us a price quote, we want to buy this week",
            "num_conversion_events": str(int(rec.props.get("num_conversion_events") or 0) + 1),
        }
        history.record(server.state, "contacts", rec, values, now, {"sourceType": "FORM"})
        server.state.set_props("contacts", rec, values)
        server.state.touch("contacts", rec, now)


def _call_now_tasks(server: SandboxServer, contact_id: str) -> list[str]:
    with server.lock:
        keys = []
        for task in server.state.iter_live("tasks"):
            key = task.props.get("heatsync_task_key") or ""
            linked = server.state.associations("tasks", task.id, "contacts")
            if ":call_now:" in key and int(contact_id) in linked:
                keys.append(key)
        return keys


def test_a_quote_request_becomes_a_call_now_task_and_the_daily_run_agrees(
    server: SandboxServer,
) -> None:
    assert main(["run"]) == 0
    store = PortalStore(Path.cwd() / "home", PORTAL)
    day = store.scored_days()[-1]
    scores = store.scores(day)
    contacts = store.table("contacts").set_index("contact_id")
    assert scores is not None
    calm = scores[
        (scores["temperature"] == "cold")
        & scores["contact_id"].map(contacts["owner_id"]).notna()
        & ~scores["contact_id"].map(contacts["do_not_contact"]).fillna(False).astype(bool)
    ]
    contact = str(calm["contact_id"].iloc[0])
    assert _call_now_tasks(server, contact) == []

    defs = build_defs()
    instance = dg.DagsterInstance.get()
    resources = dict(defs.resources or {})
    sensor = defs.resolve_sensor_def("hot_signals")
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))
    assert not first.run_requests  # the first look only sets the cursor
    quiet = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
    )
    assert not quiet.run_requests  # heatsync's own writes of the daily run are no signal

    _submit_quote_request(server, contact)
    tick = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
    )
    (request,) = tick.run_requests
    assert request.tags["heatsync/portal"] == PORTAL
    config = request.run_config["ops"]["hot_contacts"]["config"]
    assert config["contact_ids"] == [contact]

    server.reset_stats()
    result = defs.resolve_job_def("hot_lane").execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags
    )
    assert result.success
    with server.lock:
        rec = server.state.get("contacts", contact)
        assert rec.props["heatsync_temperature"] == "hot"
    (task_key,) = _call_now_tasks(server, contact)
    # only this contact was written: one contact update and its task
    assert server.stats()["writes"] <= 4, server.stats()["by_route"]

    # the same signal is not launched twice
    again = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=tick.cursor, resources=resources)
    )
    assert not again.run_requests

    # the daily run finds the task in the ledger and the values in the CRM
    assert main(["run"]) == 0
    assert _call_now_tasks(server, contact) == [task_key]


@pytest.fixture
def amocrm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AmoSandboxServer]:
    with AmoSandboxServer(generate_amocrm(150, seed=9), AmoOptions(), port=0) as srv:
        monkeypatch.chdir(tmp_path)
        for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_REFRESH_TOKEN", "HEATSYNC_PORTALS"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AMOCRM_BASE_URL", srv.base_url)
        monkeypatch.setenv("AMOCRM_ACCESS_TOKEN", str(srv.long_lived_token))
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


def _amocrm_call_now(server: AmoSandboxServer, contact_id: str) -> list[str]:
    with server.lock:
        return [
            str(t["text"])
            for t in server.state.tasks.values()
            if "[hs:call_now:" in str(t["text"]) and str(t.get("entity_id")) == contact_id
        ]


def test_an_inbound_call_on_amocrm_makes_a_warm_contact_hot_within_one_run(
    amocrm: AmoSandboxServer,
) -> None:
    assert main(["run"]) == 0
    store = PortalStore(Path.cwd() / "home", PORTAL)
    scores = store.scores(store.scored_days()[-1])
    contacts = store.table("contacts").set_index("contact_id")
    assert scores is not None
    warm = scores[
        (scores["temperature"] == "warm")
        & scores["contact_id"].map(contacts["owner_id"]).notna()
        & ~scores["contact_id"].map(contacts["do_not_contact"]).fillna(False).astype(bool)
    ].sort_values("score", ascending=False)
    contact = str(warm["contact_id"].iloc[0])
    assert _amocrm_call_now(amocrm, contact) == []

    defs = build_defs()
    instance = dg.DagsterInstance.get()
    resources = dict(defs.resources or {})
    sensor = defs.resolve_sensor_def("hot_signals")
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))
    log_inbound_call(amocrm, int(contact), duration_s=25 * 60, result="wants an offer")
    amocrm.reset_stats()
    tick = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
    )
    assert amocrm.stats()["requests"] <= 2  # the notes and the events, one page each
    (request,) = tick.run_requests
    assert request.run_config["ops"]["hot_contacts"]["config"]["contact_ids"] == [contact]
    result = defs.resolve_job_def("hot_lane").execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags
    )
    assert result.success
    (task,) = _amocrm_call_now(amocrm, contact)
    assert main(["run"]) == 0
    assert _amocrm_call_now(amocrm, contact) == [task]
