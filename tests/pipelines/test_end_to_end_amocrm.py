"""The daily job through Dagster against the amoCRM sandbox over loopback HTTP, and `heatsync run`
configured by AMOCRM_* environment variables alone.

The same assets as for HubSpot (crm/extract → heatsync/scores → crm/field_writeback, crm/tasks),
with the amoCRM connector behind the CRM-neutral resource: afterwards amoCRM holds heatsync's
fields (temperature as a select of cold, warm and hot) and tasks; a second run with no CRM change
sends no write and creates nothing, and an OAuth run keeps using the rotated refresh token it
stored, with the initial (spent) one still in the environment, under 2 % injected 5xx and the
7 requests/s limit, never blocked.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets import build_assets
from pipelines.cli import main
from pipelines.partitions import partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.run.asof import local_today
from pipelines.store import PortalStore
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state
from sandbox.amocrm.server import AmoSandboxServer

ASSETS = build_assets(crm="amocrm")
PORTAL = "default"
CONTACTS = 150


def _options() -> AmoOptions:
    """Throwaway credentials made at test time (no secret in the repo)."""
    return AmoOptions(
        client_id="test-client-" + secrets.token_hex(4),
        client_secret="test-secret-" + secrets.token_hex(12),
        redirect_uri="https://heatsync.example/amocrm/callback",
        refresh_token="test-refresh-" + secrets.token_hex(16),
        long_lived_token="test-llt-" + secrets.token_hex(16),
        auth_code=None,
        rate_per_second=7,
    )


@pytest.fixture
def server() -> Iterator[AmoSandboxServer]:
    with AmoSandboxServer(generate_state(CONTACTS, seed=5), _options(), port=0) as srv:
        yield srv


def _today(server: AmoSandboxServer) -> str:
    return local_today(server.state.timezone, pd.Timestamp.now(tz="UTC"))


def _temperatures(server: AmoSandboxServer) -> dict[str, str]:
    """contact id -> the enum code of its heatsync temperature, as amoCRM holds it."""
    with server.lock:
        field = server.state.field("contacts", code="HEATSYNC_TEMPERATURE")
        if field is None:
            return {}
        assert field["type"] == "select"
        codes = {e["id"]: e.get("code") for e in field["enums"]}
        assert set(codes.values()) == {"cold", "warm", "hot"}
        out = {}
        for contact in server.state.contacts.values():
            for value in contact.get("custom_fields_values") or []:
                if value["field_id"] == field["id"] and value["values"]:
                    out[str(contact["id"])] = codes[value["values"][0]["enum_id"]]
        return out


def _heatsync_tasks(server: AmoSandboxServer) -> list[str]:
    with server.lock:
        return sorted(
            str(task["text"]) for task in server.state.tasks.values() if "[hs:" in task["text"]
        )


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if "/".join(mat.asset_key.path) == key:
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise AssertionError(f"no materialization of {key}")


@dataclass
class Env:
    server: AmoSandboxServer
    home: Path
    instance: dg.DagsterInstance

    def run(self) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            instance=self.instance,
            partition_key=partition_key(_today(self.server), PORTAL),
            resources={
                "crm": CrmResource(
                    crm="amocrm",
                    base_url=self.server.base_url,
                    access_token=str(self.server.long_lived_token),
                ),
                "heatsync": HeatsyncSettings(home=str(self.home)),
            },
        )


def test_first_run_writes_fields_and_tasks_second_run_writes_nothing(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(portals.name, [PORTAL])
    env = Env(server, tmp_path / "home", instance)

    first = env.run()
    assert first.success
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert all(checks.values()), checks
    assert {"every_contact_scored", "all_fields_written", "all_tasks_created"} <= set(checks)

    scores = PortalStore(env.home, PORTAL).scores(_today(server))
    assert scores is not None and len(scores) > 0
    expected = dict(zip(scores["contact_id"], scores["temperature"], strict=True))
    # every scored contact carries its temperature in amoCRM, as scoring gave it
    temperatures = _temperatures(server)
    assert {k: temperatures.get(k) for k in expected} == expected
    assert set(expected.values()) == {"cold", "warm", "hot"}
    with server.lock:  # every contact of the account, not only those mapped cleanly
        live = {str(c["id"]) for c in server.state.contacts.values() if not c.get("is_deleted")}
    assert set(temperatures) == live
    assert _metadata(first, "crm/extract")["account"].startswith("amocrm-")

    tasks = _heatsync_tasks(server)
    assert tasks, "the first run creates follow-up tasks"
    assert _metadata(first, "crm/tasks")["tasks_created"] == len(tasks)

    server.reset_stats()
    second = env.run()
    assert second.success
    stats = server.stats()
    assert stats["writes"] == 0, stats["by_route"]
    assert _heatsync_tasks(server) == tasks
    assert _metadata(second, "crm/field_writeback")["contacts_written"] == 0
    assert _metadata(second, "crm/tasks")["tasks_created"] == 0


@pytest.fixture
def amo_only_env(
    server: AmoSandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Only AMOCRM_* (OAuth) variables: no HubSpot variable, no HEATSYNC_CRM."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in (
        "HUBSPOT_ACCESS_TOKEN",
        "HUBSPOT_CLIENT_ID",
        "HUBSPOT_CLIENT_SECRET",
        "HUBSPOT_REFRESH_TOKEN",
        "HUBSPOT_BASE_URL",
        "HEATSYNC_CRM",
        "AMOCRM_ACCESS_TOKEN",
        "AMOCRM_AUTH_CODE",
        "AMOCRM_TOKEN_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    opts = server.options
    env = {
        "AMOCRM_BASE_URL": server.base_url,
        "AMOCRM_CLIENT_ID": opts.client_id,
        "AMOCRM_CLIENT_SECRET": opts.client_secret,
        "AMOCRM_REDIRECT_URI": opts.redirect_uri,
        "AMOCRM_REFRESH_TOKEN": str(opts.refresh_token),
        "HEATSYNC_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _never_blocked(stats: dict[str, Any]) -> None:
    assert stats["403"] == 0, stats
    assert stats["429"] <= 0.01 * stats["requests"], stats


def test_heatsync_run_on_amocrm_env_twice_keeps_the_rotated_token_and_writes_nothing(
    server: AmoSandboxServer,
    amo_only_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    server.set_faults(fail_rate_5xx=0.02)  # 7 requests/s enforced, 2 % injected 5xx
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    _never_blocked(server.stats())
    assert re.search(r"portal default \(amocrm-\d+\)", out), out
    written = re.search(r"fields +(\d+) contacts updated", out)
    assert written and int(written.group(1)) > 0, out
    created = re.search(r"tasks +(\d+) created", out)
    assert created and int(created.group(1)) > 0, out
    assert set(_temperatures(server).values()) == {"cold", "warm", "hot"}
    tasks = _heatsync_tasks(server)
    # the rotating chain is kept under <HEATSYNC_HOME>/tokens, never in the working directory
    assert any((tmp_path / "home" / "tokens").iterdir())
    assert not (tmp_path / ".heatsync").exists()

    # the same, initial (now spent) refresh token is still in the environment
    server.reset_stats()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    stats = server.stats()
    _never_blocked(stats)
    assert stats["writes"] == 0, stats["by_route"]
    assert stats["401"] == 0  # the spent token was never sent again
    assert re.search(r"fields +0 contacts updated", out), out
    assert re.search(r"tasks +0 created", out), out
    assert _heatsync_tasks(server) == tasks


def test_dry_run_and_check_on_amocrm_env(
    server: AmoSandboxServer, amo_only_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "amocrm" in out and "ready to run" in out, out
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing is written" in out
    assert re.search(r"would update \d+ contacts", out), out
    assert server.stats()["writes"] == 0
