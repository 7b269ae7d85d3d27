"""The amoCRM sandbox state: rendering the neutral truth, save/load round trip, persistence, CLI."""

from __future__ import annotations

import json
from datetime import date

import requests

from sandbox.amocrm.__main__ import main
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state, render_truth
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState
from sandbox.portal import generate_portal


def test_render_is_deterministic_and_keeps_truth_ids(amo_state_json: str) -> None:
    again = generate_state(120, seed=5, anchor=date(2026, 5, 1))
    assert json.dumps(again.to_json()) == amo_state_json
    portal = generate_portal(120, seed=5, anchor=date(2026, 5, 1))
    state = render_truth(portal, plant_bad_records=False)
    assert sorted(state.contacts) == sorted(int(c) for c in portal.contacts["contact_id"])
    assert sorted(state.leads) == sorted(int(d) for d in portal.deals["deal_id"])
    assert state.meta["planted"] == {}
    stamps = [(e["created_at"], e["id"]) for e in state.events]
    assert stamps == sorted(stamps)


def test_save_load_round_trip(amo_state: AmoState, tmp_path) -> None:
    path = tmp_path / "nested" / "amocrm.json"
    amo_state.save(path)
    loaded = AmoState.load(path)
    assert loaded.to_json() == amo_state.to_json()
    assert not list(path.parent.glob("*.tmp"))


def test_server_persists_writes(amo_state: AmoState, tmp_path) -> None:
    path = tmp_path / "amocrm.json"
    cid = sorted(amo_state.contacts)[0]
    options = AmoOptions(rate_per_second=1000)
    with AmoSandboxServer(amo_state, options, state_path=path, persist_debounce_s=0.05) as srv:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {srv.long_lived_token}"
        url = f"{srv.base_url}/api/v4/contacts/{cid}"
        assert api.patch(url, json={"first_name": "Сохранено"}, timeout=5).status_code == 200
    loaded = AmoState.load(path)
    assert loaded.contacts[cid]["first_name"] == "Сохранено"
    assert loaded.events[-1]["created_at"] >= amo_state.events[0]["created_at"]


def test_cli_generate(tmp_path, capsys) -> None:
    out = tmp_path / "amo.json"
    assert (
        main(
            [
                "generate",
                "--contacts",
                "30",
                "--seed",
                "2",
                "--anchor",
                "2026-05-01",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "30 contacts" in capsys.readouterr().out
    assert len(AmoState.load(out).contacts) == 30
