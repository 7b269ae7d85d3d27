"""A rep's edit of a protected field survives the next runs and is reported with who and when;
another integration's edit is overwritten; heatsync's own writes are never taken for a person's;
when the period has run out heatsync writes again (`heatsync run` on the HubSpot sandbox; on
amoCRM a rep's correction in the interface stands too)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.store import PortalStore
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as generate_amocrm
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

PROP = "heatsync_temperature"
OTHER_APP = 777001


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(generate_state(150, seed=12), SandboxOptions()) as srv:
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        monkeypatch.setenv("HUBSPOT_BASE_URL", srv.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", srv.token)
        for name in (
            "HUBSPOT_CLIENT_ID",
            "HUBSPOT_CLIENT_SECRET",
            "HUBSPOT_REFRESH_TOKEN",
            "HEATSYNC_PORTALS",
            "HEATSYNC_FIELD_POLICY",
            "HEATSYNC_HUMAN_EDIT_DAYS",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


def _value(server: SandboxServer, contact: str) -> str | None:
    with server.lock:
        rec = server.state.get("contacts", contact)
        assert rec is not None
        return rec.props.get(PROP)


def test_a_reps_edit_stands_for_the_period_and_another_apps_does_not(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run"]) == 0
    store = PortalStore(Path.cwd() / "home", "default")
    scores = store.scores(store.scored_days()[-1])
    assert scores is not None
    cold = [str(c) for c in scores.loc[scores["temperature"] == "cold", "contact_id"]]
    by_rep, by_app, untouched = cold[0], cold[1], cold[2]
    rep = server.state.owners[0]["userId"]
    server.edit_as_user(by_rep, PROP, "warm", rep)
    server.edit_as_integration(by_app, PROP, "hot", OTHER_APP)
    capsys.readouterr()

    server.reset_stats()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert _value(server, by_rep) == "warm"  # the rep's value stands
    assert _value(server, by_app) == "cold"  # the other app's is overwritten
    assert _value(server, untouched) == "cold"
    assert "kept 1: edited by a person" in out
    assert re.search(rf"contact {by_rep} temperature = 'warm' by {rep} at ", out), out
    # only the two contacts whose value was not heatsync's were asked about
    history_reads = server.stats()["by_route"].get("POST objects/contacts/batch/read", 0)
    assert history_reads == 1
    kept = store.decisions(contact_id=by_rep, kind="field_kept")
    assert kept["reason"].str.startswith(f"edited by a person (by {rep}, ").any()

    # a third run: still kept, and heatsync's own writes (the other app's contact, written
    # back) are never taken for a person's
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert _value(server, by_rep) == "warm" and "kept 1: edited by a person" in out
    assert _value(server, by_app) == "cold"

    # once the period has run out, heatsync's value is written again
    monkeypatch.setenv("HEATSYNC_HUMAN_EDIT_DAYS", "0")
    assert main(["run"]) == 0
    assert _value(server, by_rep) == "cold"
    assert "edited by a person" not in capsys.readouterr().out


def test_never_write_leaves_a_field_alone(
    server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEATSYNC_FIELD_POLICY", "reasons=never_write")
    assert main(["run"]) == 0
    with server.lock:
        written = [r.props.get("heatsync_reasons") for r in server.state.iter_live("contacts")]
        temperatures = [r.props.get(PROP) for r in server.state.iter_live("contacts")]
    assert not any(written)
    assert sum(1 for t in temperatures if t) >= 140  # the other fields were written


@pytest.fixture
def amocrm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AmoSandboxServer]:
    with AmoSandboxServer(generate_amocrm(120, seed=13), AmoOptions(), port=0) as srv:
        monkeypatch.chdir(tmp_path)
        for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_REFRESH_TOKEN", "HEATSYNC_PORTALS"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AMOCRM_BASE_URL", srv.base_url)
        monkeypatch.setenv("AMOCRM_ACCESS_TOKEN", str(srv.long_lived_token))
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


def _amo_temperature(server: AmoSandboxServer, contact: str) -> str | None:
    with server.lock:
        field = server.state.field("contacts", code="HEATSYNC_TEMPERATURE")
        assert field is not None
        codes = {e["id"]: e.get("code") for e in field["enums"]}
        for value in server.state.contacts[int(contact)].get("custom_fields_values") or []:
            if value["field_id"] == field["id"] and value["values"]:
                return codes.get(value["values"][0].get("enum_id"))
    return None


def test_on_amocrm_a_reps_correction_of_the_temperature_stands(
    amocrm: AmoSandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run"]) == 0
    store = PortalStore(Path.cwd() / "home", "default")
    scores = store.scores(store.scored_days()[-1])
    assert scores is not None
    contact = str(scores.loc[scores["temperature"] == "cold", "contact_id"].iloc[0])
    rep = next(u["id"] for u in amocrm.state.users if u["id"] != amocrm.state.api_user_id)
    # the temperature is editable in amoCRM's interface (the other fields are API-only)
    amocrm.edit_as_user(contact, "HEATSYNC_TEMPERATURE", "hot", rep)
    capsys.readouterr()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert _amo_temperature(amocrm, contact) == "hot"
    assert re.search(rf"contact {contact} temperature = 'hot' by {rep} at ", out), out
