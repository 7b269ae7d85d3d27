"""Self-correction in the pipeline: the heatsync/calibration asset relearns a portal's config from
its own store and adopts it only when it beats the current one on a later time split.

The stores hold lead portals of sandbox/leads.py, whose true conversion model differs from the
defaults (page views predict not buying, time on site and the source matter): the history of
such a portal favours another config than the default.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import yaml

from pipelines.assets import build_assets, build_calibration
from pipelines.definitions import build_defs
from pipelines.partitions import partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.run import day as run
from pipelines.run.calibration import adopt, adopted_path, history_path
from pipelines.schedules import weekly_calibration_schedule
from pipelines.store import PortalStore
from sandbox.leads import LeadPortal, generate_leads
from scoring import load_config

PORTAL = "default"
ASSETS = build_assets()
CALIBRATION = build_calibration()
# the generated history ends a horizon (14 days) after its as-of: the partition day is a past day
AS_OF = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=20)
DAY = (AS_OF + pd.Timedelta(days=14)).date().isoformat()


@pytest.fixture(scope="module")
def leads() -> LeadPortal:
    return generate_leads(2_500, seed=7, as_of=AS_OF)


def _store(home: Path, portal: LeadPortal) -> PortalStore:
    store = PortalStore(home, PORTAL)
    store.merge_extract(portal.contacts, portal.activities, portal.deals, [])
    store.save_portal_meta(
        {"time_zone": "UTC", "last_extract_at": pd.Timestamp.now(tz="UTC").isoformat()}
    )
    return store


def _materialize(
    assets: list[dg.AssetsDefinition], settings: HeatsyncSettings
) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(portals.name, [PORTAL])
    return dg.materialize(
        assets,
        instance=instance,
        partition_key=partition_key(DAY, PORTAL),
        resources={"heatsync": settings},
    )


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    (materialization,) = result.asset_materializations_for_node(node)
    return dict(materialization.metadata)


def _calibrate(settings: HeatsyncSettings) -> dict[str, Any]:
    return _metadata(_materialize([CALIBRATION], settings), "heatsync__calibration")


def _score(settings: HeatsyncSettings) -> dict[str, Any]:
    return _metadata(_materialize([ASSETS.scores], settings), "heatsync__scores")


def test_history_that_favours_another_config_is_adopted_and_the_next_scores_use_it(
    tmp_path: Path, leads: LeadPortal
) -> None:
    store = _store(tmp_path, leads)
    settings = HeatsyncSettings(home=str(tmp_path), backtest_horizon_days=14)
    meta = _calibrate(settings)
    assert meta["adopted"] == dg.MetadataValue.bool(True), meta["why"]
    assert meta["current_config"].value == "default"
    assert meta["auc_calibrated"].value > meta["auc_current"].value
    assert meta["bands_in_order"].value is True and meta["beats"].value is True
    assert meta["conversions"].value >= 30
    assert isinstance(meta["weights_md"], dg.MarkdownMetadataValue)
    assert "| term |" in str(meta["weights_md"].value)
    assert {"warm", "hot"} <= set(meta["thresholds"].value)
    # written for the account, with the day's copy in the history
    path = adopted_path(store)
    assert path.is_file() and history_path(store, DAY).read_bytes() == path.read_bytes()
    assert meta["config_path"].value == str(path)
    adopted = load_config(path)
    assert adopted != load_config(None)
    assert yaml.safe_load(path.read_text())["temperature"]["hot"] == meta["thresholds"].value["hot"]

    # the next scores use it
    scored = _score(settings)
    assert scored["scoring_config"].value == f"adopted: {path}"
    saved = store.scores(DAY)
    assert saved is not None
    now = pd.Timestamp.now(tz="UTC")
    expected = run.score_day(store, DAY, now, adopted, "en", save=False).scores
    default = run.score_day(store, DAY, now, load_config(None), "en", save=False).scores
    assert saved["score"].tolist() == expected["score"].tolist()
    assert saved["score"].tolist() != default["score"].tolist()

    # Recalibrating the same history against the adopted config: the config learned on the
    # earlier cuts does not beat it at the latest one, so it is not adopted and nothing changes.
    before = path.read_bytes()
    again = _calibrate(settings)
    assert again["adopted"].value is False
    assert again["current_config"].value == f"adopted: {path}"
    assert again["auc_calibrated"].value <= again["auc_current"].value
    assert "does not beat the adopted one" in again["why"].value
    assert path.read_bytes() == before


def test_a_pinned_config_is_never_replaced(tmp_path: Path, leads: LeadPortal) -> None:
    store = _store(tmp_path, leads)
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text("temperature:\n  hot: 80\n", encoding="utf-8")
    # an adopted config exists from before the pin: the pin wins over it too
    adopt(store, "2026-01-05", load_config({"temperature": {"hot": 90}}), ["from before the pin"])
    before = adopted_path(store).read_bytes()
    settings = HeatsyncSettings(
        home=str(tmp_path), scoring_config=str(pinned), backtest_horizon_days=14
    )
    meta = _calibrate(settings)
    assert meta["adopted"].value is False
    assert meta["why"].value.startswith("pinned, not adopted")
    assert meta["current_config"].value == f"pinned: {pinned}"
    assert "auc_current" in meta and "auc_calibrated" in meta  # the comparison is still recorded
    assert adopted_path(store).read_bytes() == before
    assert not history_path(store, DAY).exists()
    assert _score(settings)["scoring_config"].value == f"pinned: {pinned}"


def test_too_little_history_keeps_the_default(tmp_path: Path) -> None:
    store = _store(tmp_path, generate_leads(150, seed=3, as_of=AS_OF))
    settings = HeatsyncSettings(home=str(tmp_path), backtest_horizon_days=14)
    meta = _calibrate(settings)
    assert meta["adopted"].value is False
    assert meta["learned"].value is False
    assert "too little history" in meta["why"].value
    assert meta["conversions"].value < 30
    assert not (store.root / "config").exists()
    assert _score(settings)["scoring_config"].value == "default"


def test_an_empty_store_changes_nothing(tmp_path: Path) -> None:
    PortalStore(tmp_path, PORTAL).save_portal_meta({"time_zone": "UTC"})
    meta = _calibrate(HeatsyncSettings(home=str(tmp_path)))
    assert meta["adopted"].value is False
    assert "no contacts" in meta["why"].value


def test_the_weekly_schedule_asks_for_every_portals_today(tmp_path: Path) -> None:
    assert weekly_calibration_schedule.cron_schedule == "0 5 * * 1"
    assert weekly_calibration_schedule.execution_timezone == "UTC"
    PortalStore(tmp_path, "riga").save_portal_meta({"time_zone": "Europe/Riga"})
    today = datetime.now(UTC).date()
    when = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=5)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(portals.name, ["riga", PORTAL])
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=when,
            repository_def=build_defs().get_repository_def(),
            resources={"crm": CrmResource(), "heatsync": HeatsyncSettings(home=str(tmp_path))},
        )
        requests = weekly_calibration_schedule.evaluate_tick(context).run_requests or []
    assert sorted(str(r.partition_key) for r in requests) == [f"{today}|{PORTAL}", f"{today}|riga"]
