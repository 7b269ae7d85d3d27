"""What the Dagster UI shows for a run matches what happened in the CRM.

A past day writes nothing, so its write-back and tasks partitions stay unmaterialized; a day after
the portal's today is refused before anything is extracted; credentials the CRM rejects fail the
run at once instead of being retried; the backtest's figures are typed and rounded; every check
says what it checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets import BACKTEST_KEY, FIELDS_KEY, TASKS_KEY, build_assets
from pipelines.partitions import partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.steps import local_today
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

ASSETS = build_assets()
PORTAL = "default"
TZ = "UTC"  # the portal's tomorrow is then always a day partition (they reach UTC tomorrow)


@dataclass
class Env:
    server: SandboxServer
    home: Path
    instance: dg.DagsterInstance

    def resources(self, token: str | None = None) -> dict[str, object]:
        return {
            "crm": CrmResource(
                access_token=token or self.server.token, base_url=self.server.base_url
            ),
            "heatsync": HeatsyncSettings(home=str(self.home)),
        }

    def today(self) -> str:
        return local_today(TZ, pd.Timestamp.now(tz="UTC"))

    def day(self, offset: int) -> str:
        return (date.fromisoformat(self.today()) + timedelta(days=offset)).isoformat()

    def run(self, day: str, token: str | None = None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            instance=self.instance,
            partition_key=partition_key(day, PORTAL),
            resources=self.resources(token),
            raise_on_error=False,
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    state = generate_state(150, seed=3)
    state.account["timeZone"] = TZ
    with SandboxServer(state, SandboxOptions(search_lag_s=0.0)) as server:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(portals.name, [PORTAL])
            yield Env(server, tmp_path / "home", instance)


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {"/".join(e.asset_key.path) for e in result.get_asset_materialization_events()}


def _step_events(result: dg.ExecuteInProcessResult, step: str) -> list[str]:
    return [e.event_type_value for e in result.all_events if e.step_key == step]


def test_a_past_day_does_not_materialize_write_back_or_tasks(env: Env) -> None:
    assert env.run(env.today()).success
    writes = env.server.stats()["writes"]

    result = env.run(env.day(-1))
    assert result.success
    assert env.server.stats()["writes"] == writes
    assert _materialized(result) == {"crm/extract", "heatsync/scores", "heatsync/backtest"}
    # Their checks did not run (the UI shows them skipped), rather than passing on nothing.
    evaluated = {e.check_name for e in result.get_asset_check_evaluations()}
    assert evaluated == {"every_contact_scored", "scores_in_range", "hot_converts_best"}
    # The log and the asset's event history say why.
    logs = [e.user_message for e in env.instance.all_logs(result.run_id) if e.step_key]
    assert any("crm/tasks" in m and "nothing written" in m for m in logs)
    observed = {
        "/".join(e.asset_key.path)
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION" and e.asset_key is not None
    }
    assert observed == {"crm/field_writeback", "crm/tasks"}
    key = partition_key(env.day(-1), PORTAL)
    for asset in (FIELDS_KEY, TASKS_KEY):
        materialized = env.instance.get_materialized_partitions(asset)
        assert key not in materialized and partition_key(env.today(), PORTAL) in materialized


def test_a_day_after_the_portals_today_fails_before_anything_materializes(env: Env) -> None:
    result = env.run(env.day(1))
    assert not result.success
    assert _materialized(result) == set()
    events = _step_events(result, "crm__extract")
    assert events.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in events
    failure = next(
        e for e in result.all_events if e.is_step_failure and e.step_key == "crm__extract"
    )
    error = failure.step_failure_data.user_failure_data
    assert error is not None and "after the portal's today" in str(error.description)
    assert env.server.stats()["writes"] == 0


def test_rejected_credentials_fail_at_once_without_retries(env: Env) -> None:
    result = env.run(env.today(), token="not-the-sandbox-token")
    assert not result.success
    events = _step_events(result, "crm__extract")
    assert events.count("STEP_START") == 1
    assert "STEP_UP_FOR_RETRY" not in events
    failure = next(
        e for e in result.all_events if e.is_step_failure and e.step_key == "crm__extract"
    )
    error = failure.step_failure_data.user_failure_data
    assert error is not None and "401" in str(error.description)
    assert "not-the-sandbox-token" not in str(error.description)
    assert env.server.stats()["401"] == 1


def test_backtest_metadata_is_typed_and_rounded(env: Env) -> None:
    past = env.day(-30)
    assert env.run(past).success
    result = env.run(env.today())
    assert result.success
    mat = next(
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == BACKTEST_KEY
    )
    meta = mat.metadata
    assert isinstance(meta["auc"], dg.FloatMetadataValue)
    assert isinstance(meta["contacts"], dg.IntMetadataValue)
    assert isinstance(meta["bands_in_order"], dg.BoolMetadataValue)
    assert isinstance(meta["evaluated"], dg.BoolMetadataValue)
    for name in ("auc", "base_rate", "conversion_hot", "conversion_warm", "conversion_cold"):
        if name in meta:  # an undefined figure (a band with no contacts) is left out
            value = meta[name].value
            assert isinstance(meta[name], dg.FloatMetadataValue) and value == round(value, 3)
    if "lift_hot_over_cold" in meta:
        lift = meta["lift_hot_over_cold"].value
        assert lift == round(lift, 2)
    # What `heatsync run` prints is read as plain values.
    plain = {k: getattr(v, "value", v) for k, v in meta.items()}
    assert plain["scored_day"] == past and plain["horizon_days"] == 30
    assert plain["evaluated"] is True and isinstance(plain["converted"], int)
    assert isinstance(plain["bands_in_order"], bool)
    for name in ("by_band", "by_segment", "calibration"):
        table = meta[name]
        assert isinstance(table, dg.TableMetadataValue), name
        assert table.schema is not None and table.records
        columns = [c.name for c in table.schema.columns]
        assert "conversion_pct" in columns and "rate" not in columns
        for record in table.records:
            pct = record.data["conversion_pct"]
            assert pct is None or pct == round(pct, 1)
    bands = [r.data["band"] for r in meta["by_band"].records]
    assert bands == ["hot", "warm", "cold"]
    assert sum(r.data["n"] for r in meta["by_band"].records) == plain["contacts"]


def test_every_check_says_what_it_checks() -> None:
    specs = [spec for asset in ASSETS for spec in asset.check_specs]
    assert len(specs) == 6
    undescribed = [spec.name for spec in specs if not (spec.description or "").strip()]
    assert not undescribed
