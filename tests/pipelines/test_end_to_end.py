"""The daily job through Dagster against the sandbox HubSpot over loopback HTTP.

What a user relies on: afterwards HubSpot holds heatsync's fields and tasks; a second run with
no CRM change sends no write request and creates nothing; a backfilled past day never writes; a
run that crashed after creating tasks but before recording them does not duplicate them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets import build_assets
from pipelines.partitions import partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.steps import local_today
from pipelines.store import PortalStore
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

ASSETS = build_assets()
PORTAL = "default"


@dataclass
class Env:
    server: SandboxServer
    home: Path
    instance: dg.DagsterInstance

    def resources(self) -> dict[str, object]:
        return {
            "crm": CrmResource(access_token=self.server.token, base_url=self.server.base_url),
            "heatsync": HeatsyncSettings(home=str(self.home)),
        }

    def today(self) -> str:
        tz = self.server.state.account.get("timeZone", "UTC")  # the portal's calendar
        return local_today(tz, pd.Timestamp.now(tz="UTC"))

    def run(self, day: str | None = None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            instance=self.instance,
            partition_key=partition_key(day or self.today(), PORTAL),
            resources=self.resources(),
        )

    def store(self) -> PortalStore:
        return PortalStore(self.home, PORTAL)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    state = generate_state(400, seed=11)
    with SandboxServer(state, SandboxOptions(search_lag_s=0.0)) as server:
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(portals.name, [PORTAL])
        yield Env(server, tmp_path / "home", instance)


def _contacts_with(server: SandboxServer, prop: str) -> dict[str, str]:
    with server.lock:
        return {
            str(rec.id): rec.props[prop]
            for rec in server.state.iter_live("contacts")
            if rec.props.get(prop)
        }


def _heatsync_tasks(server: SandboxServer) -> list[str]:
    with server.lock:
        return [
            rec.props["heatsync_task_key"]
            for rec in server.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        ]


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if "/".join(mat.asset_key.path) == key:
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise AssertionError(f"no materialization of {key}")


def test_first_run_writes_fields_and_tasks_second_run_writes_nothing(env: Env) -> None:
    first = env.run()
    assert first.success
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {
        "every_contact_scored": True,
        "scores_in_range": True,
        "all_fields_written": True,
        "no_duplicate_tasks": True,
        "all_tasks_created": True,
        "hot_converts_best": True,  # nothing to compare yet: no scores a horizon ago
    }

    scores = env.store().scores(env.today())
    assert scores is not None
    temperatures = _contacts_with(env.server, "heatsync_temperature")
    # Every scored contact now carries its temperature in HubSpot, with the value scoring gave.
    expected = dict(zip(scores["contact_id"], scores["temperature"], strict=True))
    assert {k: temperatures.get(k) for k in expected} == expected
    assert set(expected.values()) == {"cold", "warm", "hot"}
    assert scores["segment"].nunique() >= 5

    task_keys = _heatsync_tasks(env.server)
    assert task_keys, "the first run creates follow-up tasks"
    assert len(task_keys) == len(set(task_keys))
    tasks_meta = _metadata(first, "crm/tasks")
    assert tasks_meta["tasks_created"] == len(task_keys)

    env.server.reset_stats()
    second = env.run()
    assert second.success
    stats = env.server.stats()
    assert stats["writes"] == 0, stats["by_route"]
    assert _heatsync_tasks(env.server) == task_keys
    assert _metadata(second, "crm/field_writeback")["contacts_written"] == 0


def test_reps_see_fields_and_tasks_through_the_official_sdk(env: Env) -> None:
    from hubspot import HubSpot

    assert env.run().success
    client = HubSpot(access_token=env.server.token, host=env.server.base_url)
    fields = ["heatsync_temperature", "heatsync_score", "heatsync_segment", "heatsync_reasons"]
    contacts = client.crm.contacts.get_all(properties=fields)
    scored = env.store().scores(env.today())
    assert scored is not None
    by_id = {c.id: c.properties for c in contacts}
    for contact_id, temperature, segment in scored[
        ["contact_id", "temperature", "segment"]
    ].itertuples(index=False):
        assert by_id[contact_id]["heatsync_temperature"] == temperature
        assert by_id[contact_id]["heatsync_segment"] == segment
    tasks = client.crm.objects.get_all(
        "tasks",
        properties=["hs_task_subject", "hs_task_body", "hubspot_owner_id", "heatsync_task_key"],
    )
    ours = [t for t in tasks if t.properties.get("heatsync_task_key")]
    assert ours and all(t.properties["hs_task_subject"] for t in ours)
    assert all(t.properties["hubspot_owner_id"] for t in ours)


def test_backfilled_past_day_scores_but_never_writes(env: Env) -> None:
    env.run()  # today: fills the store
    before_tasks = _heatsync_tasks(env.server)
    env.server.reset_stats()
    yesterday = (date.fromisoformat(env.today()) - pd.Timedelta(days=1)).isoformat()
    result = env.run(yesterday)
    assert result.success
    assert env.server.stats()["writes"] == 0
    assert _heatsync_tasks(env.server) == before_tasks
    past = env.store().scores(yesterday)
    assert past is not None and len(past) > 0
    # nothing was written, so the UI must not show write-back or tasks as materialized that day
    materialized = {
        "/".join(e.event_specific_data.materialization.asset_key.path)
        for e in result.get_asset_materialization_events()
    }
    assert "heatsync/scores" in materialized
    assert not materialized & {"crm/field_writeback", "crm/tasks"}


def test_rerun_after_crash_between_create_and_record_creates_no_duplicate(env: Env) -> None:
    assert env.run().success
    store = env.store()
    ledger = store.ledger()
    created = ledger[ledger["status"] == "created"]
    assert len(created) > 0
    # Simulate a crash after HubSpot created the tasks but before the ledger said so: the
    # ledger holds them as pending, and tomorrow's touch keys would differ if we forgot them.
    crashed = ledger.copy()
    crashed["status"] = "pending"
    crashed["task_id"] = None
    store.save_ledger(crashed)
    count_before = Counter(_heatsync_tasks(env.server))

    env.server.reset_stats()
    assert env.run().success
    count_after = Counter(_heatsync_tasks(env.server))
    assert count_after == count_before
    assert max(count_after.values()) == 1
    settled = store.ledger()
    assert (settled["status"] == "created").all()
    assert set(settled["task_key"]) == set(created["task_key"])


def test_a_write_the_crm_refuses_is_reported_and_the_run_goes_on(env: Env) -> None:
    crm_extract, contact_scores, crm_field_writeback = ASSETS[:3]
    from sandbox.hubspot.state import now_ms

    key = partition_key(env.today(), PORTAL)
    scored = dg.materialize(
        [crm_extract, contact_scores],
        instance=env.instance,
        partition_key=key,
        resources=env.resources(),
    )
    assert scored.success
    # A contact deleted in HubSpot between scoring and write-back: its update must fail loudly.
    victim = str(env.store().scores(env.today())["contact_id"].iloc[0])  # type: ignore[index]
    with env.server.lock:
        env.server.state.archive("contacts", env.server.state.get("contacts", victim), now_ms())
    result = dg.materialize(
        [crm_field_writeback],
        instance=env.instance,
        partition_key=key,
        resources=env.resources(),
    )
    assert result.success
    meta = _metadata(result, "crm/field_writeback")
    assert meta["write_failures"] == 1
    assert victim in str(meta["failure_examples"])
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "all_fields_written" and not check.passed
    # Nothing else was lost: every other contact holds its temperature.
    temperatures = _contacts_with(env.server, "heatsync_temperature")
    scores = env.store().scores(env.today())
    assert scores is not None
    assert set(scores["contact_id"]) - set(temperatures) == {victim}


def test_tasks_before_any_field_write_back_on_a_new_portal_are_created(env: Env) -> None:
    # The daily job runs the write-back and the tasks side by side; on a portal's first day the
    # tasks may go first, before heatsync's properties (the task key among them) exist.
    crm_extract, contact_scores, _fields, crm_tasks = ASSETS[:4]
    result = dg.materialize(
        [crm_extract, contact_scores, crm_tasks],
        instance=env.instance,
        partition_key=partition_key(env.today(), PORTAL),
        resources=env.resources(),
    )
    assert result.success
    meta = _metadata(result, "crm/tasks")
    created = _heatsync_tasks(env.server)
    assert created and len(created) == len(set(created))
    assert meta["task_failures"] == 0 and meta["tasks_created"] == len(created), meta
    assert all(check.passed for check in result.get_asset_check_evaluations())


def _backtest_day(env: Env) -> str:
    return (date.fromisoformat(env.today()) - pd.Timedelta(days=30)).isoformat()


def test_todays_run_backtests_the_scores_of_a_horizon_ago(env: Env) -> None:
    past = _backtest_day(env)
    assert env.run(past).success  # an ops backfill of the day a horizon back
    assert env.server.stats()["writes"] == 0
    scored_then = env.store().scores(past)
    assert scored_then is not None

    result = env.run()
    meta = _metadata(result, "heatsync/backtest")
    assert meta["evaluated"] is True and meta["scored_day"] == past
    assert meta["contacts"] == len(scored_then)
    # The outcome is what the store knows: deals won in the 30 days after the scored day.
    deals = env.store().table("deals")
    as_of = pd.Timestamp(past, tz=env.server.state.account.get("timeZone", "UTC")) + pd.Timedelta(
        days=1
    )
    won = deals[
        (deals["status"] == "won")
        & (deals["closed_at"] > as_of)
        & (deals["closed_at"] <= as_of + pd.Timedelta(days=30))
        & deals["contact_id"].isin(scored_then["contact_id"])
    ]
    assert meta["converted"] == won["contact_id"].nunique() > 0
    assert 0.5 < float(meta["auc"]) <= 1.0  # type: ignore[arg-type]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["hot_converts_best"].passed


def test_backtest_check_warns_when_hot_stops_converting_best(env: Env) -> None:
    score_backtest = ASSETS.backtest

    past = _backtest_day(env)
    assert env.run(past).success
    assert env.run().success
    # Turn the stored bands of that day upside down: the coldest now sit in "hot".
    store = env.store()
    scores = store.scores(past)
    assert scores is not None
    flipped = scores.copy()
    flipped["temperature"] = scores["temperature"].map(
        {"hot": "cold", "cold": "hot", "warm": "warm"}
    )
    flipped["score"] = 100 - scores["score"]
    store.save_scores(past, flipped)

    result = dg.materialize(
        [score_backtest],
        instance=env.instance,
        partition_key=partition_key(env.today(), PORTAL),
        resources=env.resources(),
    )
    assert result.success  # a warning, not a failed run
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "hot_converts_best" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    meta = _metadata(result, "heatsync/backtest")
    assert meta["bands_in_order"] is False
    assert float(meta["auc"]) < 0.5  # type: ignore[arg-type]


def test_every_burning_contact_with_an_owner_gets_its_call_and_left_outs_are_listed(
    env: Env,
) -> None:
    result = env.run()
    store = env.store()
    scores = store.scores(env.today())
    assert scores is not None
    contacts = store.table("contacts").set_index("contact_id")
    burning = scores.loc[scores["segment"] == "burning", "contact_id"]
    reachable = [
        c for c in burning if contacts.loc[c, "owner_id"] and not contacts.loc[c, "do_not_contact"]
    ]
    assert reachable, "the sandbox seeds burning contacts"
    keys = set(_heatsync_tasks(env.server))
    called = {k.split(":")[1] for k in keys if k.split(":")[2] == "call_now"}
    assert set(reachable) <= called
    meta = _metadata(result, "crm/tasks")
    skipped = meta["skipped"]
    assert isinstance(skipped, dict)
    assert meta["left_out"] == skipped["over_cap"] > 0
    listed = meta["left_out_list"]
    assert isinstance(listed, list) and listed
    assert not {row["contact_id"] for row in listed} & set(burning)
    assert "| contact | name | owner | rule | score |" in str(meta["left_out_md"])


def test_todays_tasks_and_writes_use_the_as_of_the_scores_were_computed_with(env: Env) -> None:
    crm_extract, contact_scores, crm_field_writeback, crm_tasks = ASSETS[:4]

    key = partition_key(env.today(), PORTAL)
    scored = dg.materialize(
        [crm_extract, contact_scores],
        instance=env.instance,
        partition_key=key,
        resources=env.resources(),
    )
    assert scored.success
    scores = env.store().scores(env.today())
    assert scores is not None
    as_of = pd.Timestamp(scores["as_of"].iloc[0])
    assert (scores["as_of"] == as_of).all()
    assert _metadata(scored, "heatsync/scores")["as_of"] == as_of.isoformat()
    # Write-back and tasks run later, in runs of their own: they plan with the scores' instant,
    # not with a clock of their own.
    later = dg.materialize(
        [crm_field_writeback, crm_tasks],
        instance=env.instance,
        partition_key=key,
        resources=env.resources(),
    )
    assert later.success
    record = env.instance.get_run_record_by_id(later.run_id)
    assert record is not None and record.start_time is not None
    assert pd.Timestamp(record.start_time, unit="s", tz="UTC") > as_of
    ledger = env.store().ledger()
    ours = ledger[ledger["run_id"] == later.run_id]
    assert len(ours) == _metadata(later, "crm/tasks")["tasks_created"] > 0
    assert (ours["created_at"] == as_of).all()
    changes = env.store().changes()
    assert len(changes) and (pd.to_datetime(changes["changed_at"], utc=True) == as_of).all()
