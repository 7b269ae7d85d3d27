"""The store and the task keys belong to the CRM account, not to a local name or a local folder.

What a team relies on: a lost store (new machine, container without a volume, another home)
never erases what heatsync wrote before and never duplicates a task; a second local name for the
same account creates nothing twice; a name pointed at another account (test token → production)
reads that account in full and writes only there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from connectors.base import field_changes
from pipelines.assets import build_assets
from pipelines.partitions import partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.steps import local_today
from pipelines.store import PortalStore, account_key
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

ASSETS = build_assets()
HEATSYNC_FIELDS = (
    "heatsync_temperature",
    "heatsync_score",
    "heatsync_trend",
    "heatsync_segment",
    "heatsync_reasons",
    "heatsync_next_touch_due",
)


@dataclass
class Deployment:
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)

    def run(
        self, server: SandboxServer, home: Path, portal: str = "default", days_ago: int = 0
    ) -> dict[str, dict]:
        if portal not in self.instance.get_dynamic_partitions(portals.name):
            self.instance.add_dynamic_partitions(portals.name, [portal])
        tz = server.state.account.get("timeZone", "UTC")
        today = pd.Timestamp(local_today(tz, pd.Timestamp.now(tz="UTC")))
        day = (today - pd.Timedelta(days=days_ago)).date().isoformat()
        result = dg.materialize(
            ASSETS,
            instance=self.instance,
            partition_key=partition_key(day, portal),
            resources={
                "crm": CrmResource(access_token=server.token, base_url=server.base_url),
                "heatsync": HeatsyncSettings(home=str(home)),
            },
        )
        assert result.success
        out: dict[str, dict] = {}
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            out["/".join(mat.asset_key.path)] = {
                k: getattr(v, "value", v) for k, v in mat.metadata.items()
            }
        return out


def _server(contacts: int, seed: int, portal_id: int | None = None) -> SandboxServer:
    state = generate_state(contacts, seed=seed)
    if portal_id is not None:
        state.account["portalId"] = portal_id
    return SandboxServer(state, SandboxOptions(search_lag_s=0.0))


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with _server(300, seed=21) as srv:
        yield srv


def _fields(server: SandboxServer) -> dict[str, dict[str, str]]:
    with server.lock:
        return {
            str(rec.id): {f: rec.props.get(f) or "" for f in HEATSYNC_FIELDS}
            for rec in server.state.iter_live("contacts")
        }


def _task_keys(server: SandboxServer) -> Counter[str]:
    with server.lock:
        return Counter(
            rec.props["heatsync_task_key"]
            for rec in server.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        )


def _live_contacts(server: SandboxServer) -> set[str]:
    with server.lock:
        return {str(rec.id) for rec in server.state.iter_live("contacts")}


def test_a_lost_store_erases_nothing_and_creates_no_task_twice(
    server: SandboxServer, tmp_path: Path
) -> None:
    deployment = Deployment()
    deployment.run(server, tmp_path / "first", days_ago=1)  # yesterday: scored, not written
    deployment.run(server, tmp_path / "first")  # today, against yesterday: trends are set
    written = _fields(server)
    assert sum(1 for f in written.values() if f["heatsync_trend"]) > 100
    tasks = _task_keys(server)
    assert tasks

    # The store is gone (new machine, another home): the CRM still holds heatsync's values.
    server.reset_stats()
    meta = deployment.run(server, tmp_path / "fresh")
    assert server.stats()["writes"] == 0, server.stats()["by_route"]
    assert _fields(server) == written
    assert _task_keys(server) == tasks
    assert meta["crm/tasks"]["tasks_created"] == 0
    # the CRM's heatsync tasks are the task history a lost store no longer has
    assert meta["crm/extract"]["tasks_found_in_crm"] == sum(tasks.values())
    assert set(PortalStore(tmp_path / "fresh", "default").ledger()["task_key"]) == set(tasks)


def test_one_account_under_two_local_names_shares_store_and_task_keys(
    server: SandboxServer, tmp_path: Path
) -> None:
    deployment = Deployment()
    home = tmp_path / "home"
    deployment.run(server, home, "default")
    tasks = _task_keys(server)
    account = account_key("hubspot", str(server.state.account["portalId"]))
    assert all(key.startswith(account + ":") for key in tasks)

    server.reset_stats()
    meta = deployment.run(server, home, "acme")
    assert server.stats()["writes"] == 0
    assert _task_keys(server) == tasks
    assert PortalStore(home, "acme").root == PortalStore(home, "default").root
    assert meta["crm/extract"]["account"] == account
    assert "shares store and task keys with default" in meta["crm/extract"]["binding"]

    # the same account under yet another name in another home: the keys are the CRM's, so
    # the tasks are found in the CRM and none is created again
    deployment.run(server, tmp_path / "elsewhere", "acme-prod")
    assert _task_keys(server) == tasks
    assert max(_task_keys(server).values()) == 1


def test_a_name_pointed_at_another_account_scores_all_of_that_account(tmp_path: Path) -> None:
    deployment = Deployment()
    home = tmp_path / "home"
    with _server(300, seed=31) as test_account:
        deployment.run(test_account, home)
        before_test = _fields(test_account)
        test_tasks = _task_keys(test_account)
    with _server(500, seed=32, portal_id=99001122) as production:
        meta = deployment.run(production, home)
        live = _live_contacts(production)
        assert meta["crm/extract"]["mode"] == "full"
        assert meta["crm/extract"]["account"] == "hubspot-99001122"
        assert "now reaches hubspot-99001122" in meta["crm/extract"]["binding"]
        store = PortalStore(home, "default")
        quarantine = store.quarantine()
        bad = set(quarantine.loc[quarantine["object_type"] == "contacts", "object_id"])
        assert len(bad) == 1  # the sandbox plants one contact with an unreadable create date
        scores = store.scores(next(iter(_days(home))))
        assert scores is not None and set(scores["contact_id"]) == live - bad
        written = _fields(production)
        assert all(written[c]["heatsync_temperature"] for c in live - bad)
        assert all(k.startswith("hubspot-99001122:") for k in _task_keys(production))
    # the test account's store is kept apart, untouched
    old = PortalStore(home, "other")
    old.bind("hubspot", str(24681357))
    assert old.root != PortalStore(home, "default").root
    assert len(old.table("contacts")) == len(before_test) - 1  # less the planted bad one
    assert sum(test_tasks.values()) == len(old.ledger())


def _days(home: Path) -> list[str]:
    return PortalStore(home, "default").scored_days()


def test_a_store_filled_before_binding_moves_under_its_account(tmp_path: Path) -> None:
    legacy = PortalStore(tmp_path, "default")
    assert legacy.root == tmp_path / "store" / "default"
    legacy.save_portal_meta({"portal_id": "4471803", "time_zone": "UTC"})
    legacy.save_ledger(
        pd.DataFrame(
            {
                "task_key": ["default:17:call_now:2026-12-01"],
                "contact_id": ["17"],
                "rule": ["call_now"],
                "period": ["2026-12-01"],
                "status": ["created"],
                "task_id": ["9"],
                "created_at": [pd.Timestamp("2026-12-01", tz="UTC")],
                "run_id": ["r1"],
            }
        )
    )
    message = legacy.bind("hubspot", "4471803")
    assert message is not None and "moved" in message
    assert legacy.root == tmp_path / "accounts" / "hubspot-4471803"
    assert not (tmp_path / "store" / "default").exists()
    assert legacy.ledger()["task_key"].tolist() == ["hubspot-4471803:17:call_now:2026-12-01"]
    assert legacy.bind("hubspot", "4471803") is None  # bound already: nothing to say

    # a legacy store of another account is never adopted
    other = PortalStore(tmp_path, "beta")
    other.save_portal_meta({"portal_id": "555"})
    other.bind("hubspot", "4471803")
    assert (tmp_path / "store" / "beta" / "portal.json").exists()
    assert other.root == legacy.root


def test_an_unknown_value_never_blanks_one_the_crm_holds() -> None:
    scores = pd.DataFrame(
        {
            "contact_id": ["1", "2", "3"],
            "temperature": ["warm", "warm", "warm"],
            "trend": [None, None, "cooling"],
            "segment": [None, "fan", "fan"],
        }
    )
    contacts = pd.DataFrame(
        {
            "contact_id": ["1", "2", "3"],
            "current_temperature": ["warm", "warm", "warm"],
            "current_trend": ["warming", None, "warming"],
            "current_segment": ["loyal", "fan", "fan"],
        }
    )
    changes = field_changes(scores, contacts).set_index("contact_id")
    # trend unknown (None) keeps the CRM's "warming"; a segment the methodology drops is cleared
    assert not changes.loc["1", "changed_trend"]
    assert changes.loc["1", "changed_segment"] and changes.loc["1", "segment"] is None
    assert "2" not in changes.index
    assert changes.loc["3", "changed_trend"] and changes.loc["3", "trend"] == "cooling"
