"""One deployment, many portals: `heatsync run` with a portals file runs a HubSpot portal and an
amoCRM account side by side through Dagster, one summary each, each with its own language, task
cap and store; a portal whose credentials are not set fails alone; a second run writes nothing
to either CRM."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main
from pipelines.store import PortalStore
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as generate_amocrm
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state as generate_hubspot

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
LATVIAN = re.compile(r"[āēīūčšžģķļņ]")
BURNING_LV = "Zvanīt nekavējoties"  # lv.yaml: the subject of a burning contact's call


@dataclass
class Deployment:
    hubspot: SandboxServer
    amocrm: AmoSandboxServer
    home: Path


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("HEATSYNC_CRM", "HEATSYNC_LOCALE", "HEATSYNC_SCORING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    with (
        SandboxServer(generate_hubspot(150, seed=3), SandboxOptions(search_lag_s=0.0)) as hubspot,
        AmoSandboxServer(generate_amocrm(120, seed=4), AmoOptions(), port=0) as amocrm,
    ):
        portals = [
            {
                "name": "acme",
                "crm": "hubspot",
                "base_url": hubspot.base_url,
                "credentials": {"access_token": "ACME_HUBSPOT_TOKEN"},
                "locale": "lv",
                "daily_task_cap": 1,
            },
            {
                "name": "baltic",
                "crm": "amocrm",
                "base_url": amocrm.base_url,
                "credentials": {"access_token": "BALTIC_AMOCRM_TOKEN"},
            },
            {
                "name": "unset",
                "crm": "hubspot",
                "base_url": hubspot.base_url,
                "credentials": {"access_token": "NOT_SET_ANYWHERE_TOKEN"},
            },
        ]
        path = tmp_path / "portals.yaml"
        path.write_text(yaml.safe_dump({"portals": portals}))
        env = {
            "HEATSYNC_PORTALS": str(path),
            "HEATSYNC_HOME": str(tmp_path / "home"),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            "ACME_HUBSPOT_TOKEN": hubspot.token,
            "BALTIC_AMOCRM_TOKEN": str(amocrm.long_lived_token),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("NOT_SET_ANYWHERE_TOKEN", raising=False)
        yield Deployment(hubspot, amocrm, tmp_path / "home")


def _hubspot_subjects(server: SandboxServer) -> list[str]:
    with server.lock:
        return [
            str(rec.props.get("hs_task_subject"))
            for rec in server.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        ]


def _hubspot_owners(server: SandboxServer) -> list[tuple[str, str]]:
    with server.lock:
        return [
            (str(rec.props.get("hubspot_owner_id")), str(rec.props.get("hs_task_subject")))
            for rec in server.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        ]


def _amocrm_texts(server: AmoSandboxServer) -> list[str]:
    with server.lock:
        return [str(t["text"]) for t in server.state.tasks.values() if "[hs:" in t["text"]]


def test_both_portals_run_side_by_side_and_a_broken_one_fails_alone(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run"]) == 1  # one of three portals cannot run
    out, err = capsys.readouterr()
    # one summary per portal that ran, and the failing one named with what to set
    assert re.search(r"heatsync · portal acme \(hubspot-\d+\)", out)
    assert re.search(r"heatsync · portal baltic \(amocrm-\d+\)", out)
    assert "portal unset: NOT_SET_ANYWHERE_TOKEN not set" in err
    assert "2 of 3 portals succeeded; failed: unset" in out

    # each portal has its own store, bound to its own account
    acme, baltic = PortalStore(deployment.home, "acme"), PortalStore(deployment.home, "baltic")
    assert acme.account is not None and acme.account.startswith("hubspot-")
    assert baltic.account is not None and baltic.account.startswith("amocrm-")
    assert acme.root != baltic.root

    # each in its own language: Latvian set for acme, amoCRM's Russian by default for baltic
    subjects = _hubspot_subjects(deployment.hubspot)
    texts = _amocrm_texts(deployment.amocrm)
    assert subjects and texts
    assert all(LATVIAN.search(s) for s in subjects), subjects[:3]
    assert all(CYRILLIC.search(t) for t in texts), texts[:3]
    # acme's cap of one task per owner and day holds (burning calls are never capped); baltic
    # keeps the default cap of 20
    capped = Counter(
        owner
        for owner, subject in _hubspot_owners(deployment.hubspot)
        if not subject.startswith(BURNING_LV)
    )
    assert capped and max(capped.values()) == 1, capped
    assert "left out" in out
    assert len(texts) > len(capped)

    # a second run: nothing changed in either CRM, so nothing is written to either
    deployment.hubspot.reset_stats()
    deployment.amocrm.reset_stats()
    assert main(["run"]) == 1
    out, _ = capsys.readouterr()
    assert deployment.hubspot.stats()["writes"] == 0
    assert deployment.amocrm.stats()["writes"] == 0
    assert sorted(_hubspot_subjects(deployment.hubspot)) == sorted(subjects)
    assert sorted(_amocrm_texts(deployment.amocrm)) == sorted(texts)

    # --portal runs that one alone
    assert main(["run", "--portal", "baltic"]) == 0
    out, _ = capsys.readouterr()
    assert "portal baltic" in out and "portal acme" not in out and "portals succeeded" not in out


def test_an_unknown_portal_name_lists_the_known_ones(deployment: Deployment) -> None:
    with pytest.raises(SystemExit, match=r"no portal 'nope' in .*: acme, baltic, unset"):
        main(["run", "--portal", "nope"])
