"""The daily schedule asks for today's partition of every portal, in that portal's time zone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.partitions import portals
from pipelines.resources import CrmConnection, CrmResource, HeatsyncSettings, PortalSettings
from pipelines.schedules import daily_scoring_schedule, register_portals
from pipelines.store import PortalStore


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def test_schedule_requests_today_per_portal_in_its_time_zone(
    instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance.add_dynamic_partitions(portals.name, ["riga", "honolulu"])
    PortalStore(tmp_path, "riga").save_portal_meta({"time_zone": "Europe/Riga"})
    PortalStore(tmp_path, "honolulu").save_portal_meta({"time_zone": "Pacific/Honolulu"})
    # 06:00 UTC: already today in Riga, still yesterday in Honolulu. Today, so that both days are
    # partitions whatever the configured first day.
    today = datetime.now(UTC).date()
    when = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=6)
    # The store is found through the heatsync resource, not the environment.
    monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "not-this-home"))
    from pipelines.definitions import build_defs

    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        repository_def=build_defs().get_repository_def(),
        resources={"crm": CrmResource(), "heatsync": HeatsyncSettings(home=str(tmp_path))},
    )
    requests = list(daily_scoring_schedule.evaluate_tick(context).run_requests or [])
    keys = sorted(str(r.partition_key) for r in requests)
    assert keys == [f"{today - timedelta(days=1)}|honolulu", f"{today}|riga"]
    # One request per portal and day: a second tick of the same day asks for the same runs.
    again = daily_scoring_schedule.evaluate_tick(context).run_requests or []
    assert sorted(r.run_key for r in again) == sorted(r.run_key for r in requests)


def test_with_a_portals_file_only_its_portals_run_each_in_its_own_time_zone(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """A portal's own time zone wins over what its store read; a portal no longer in the file
    keeps its partitions but is not scheduled."""
    instance.add_dynamic_partitions(portals.name, ["riga", "honolulu", "removed"])
    PortalStore(tmp_path, "honolulu").save_portal_meta({"time_zone": "Europe/Riga"})
    today = datetime.now(UTC).date()
    when = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=6)
    crm = CrmResource(portals={"riga": CrmConnection(), "honolulu": CrmConnection()})
    heatsync = HeatsyncSettings(
        home=str(tmp_path), portals={"honolulu": PortalSettings(time_zone="Pacific/Honolulu")}
    )
    from pipelines.definitions import build_defs

    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        repository_def=build_defs().get_repository_def(),
        resources={"crm": crm, "heatsync": heatsync},
    )
    requests = daily_scoring_schedule.evaluate_tick(context).run_requests or []
    keys = sorted(str(r.partition_key) for r in requests)
    assert keys == [f"{today - timedelta(days=1)}|honolulu", f"{today}|riga"]


def test_sensor_registers_the_default_portal_once(instance: dg.DagsterInstance) -> None:
    resources = {"crm": CrmResource()}
    context = dg.build_sensor_context(instance=instance, resources=resources)
    first = register_portals.evaluate_tick(context)
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["default"]]
    instance.add_dynamic_partitions(portals.name, ["default"])
    again = dg.build_sensor_context(instance=instance, resources=resources)
    assert not register_portals.evaluate_tick(again).dynamic_partitions_requests


def test_sensor_registers_every_portal_of_the_portals_file(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions(portals.name, ["acme"])
    crm = CrmResource(portals={"acme": CrmConnection(), "baltic": CrmConnection(crm="amocrm")})
    context = dg.build_sensor_context(instance=instance, resources={"crm": crm})
    added = register_portals.evaluate_tick(context).dynamic_partitions_requests
    assert [r.partition_keys for r in added] == [["baltic"]]


@pytest.mark.parametrize("utc_time", ["00:30", "11:00", "23:30"])
def test_every_portals_today_is_a_partition_at_any_hour(utc_time: str) -> None:
    from pipelines.partitions import days
    from pipelines.steps import local_today

    now = pd.Timestamp(f"{datetime.now(UTC).date()} {utc_time}", tz="UTC")
    existing = set(days().get_partition_keys(current_time=datetime.fromisoformat(now.isoformat())))
    # From UTC+14 (already tomorrow after 10:00 UTC) to UTC-11 (still yesterday before 11:00).
    for tz in ("Pacific/Kiritimati", "Asia/Tokyo", "Europe/Riga", "UTC", "Pacific/Pago_Pago"):
        assert local_today(tz, now) in existing, (tz, utc_time)


def test_schedule_times_and_time_zone_are_per_deployment(instance: dg.DagsterInstance) -> None:
    from pipelines.definitions import build_defs

    env = {
        "HUBSPOT_ACCESS_TOKEN": "placeholder-token",
        "HEATSYNC_DAILY_CRON": "30 7 * * 1-5",
        "HEATSYNC_WEEKLY_CRON": "0 4 * * 0",
        "HEATSYNC_SCHEDULE_TIMEZONE": "Europe/Riga",
    }
    defs = build_defs(env)
    daily = defs.resolve_schedule_def("daily_scoring_schedule")
    weekly = defs.resolve_schedule_def("weekly_calibration_schedule")
    assert (daily.cron_schedule, daily.execution_timezone, daily.job_name) == (
        "30 7 * * 1-5",
        "Europe/Riga",
        "daily_scoring",
    )
    assert (weekly.cron_schedule, weekly.execution_timezone, weekly.job_name) == (
        "0 4 * * 0",
        "Europe/Riga",
        "weekly_calibration",
    )
    defaults = build_defs({"HUBSPOT_ACCESS_TOKEN": "placeholder-token"})
    assert defaults.resolve_schedule_def("daily_scoring_schedule").cron_schedule == "0 6 * * *"
    assert defaults.resolve_schedule_def("weekly_calibration_schedule").cron_schedule == (
        "0 5 * * 1"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HEATSYNC_DAILY_CRON", "every morning"),
        ("HEATSYNC_WEEKLY_CRON", "0 5 * * 8"),
        ("HEATSYNC_SCHEDULE_TIMEZONE", "Europe/Atlantis"),
    ],
)
def test_a_schedule_setting_that_is_not_valid_names_its_variable(variable: str, value: str) -> None:
    from pipelines.config import SettingsError
    from pipelines.schedules import build_schedules

    with pytest.raises(SettingsError, match=variable):
        build_schedules({variable: value})
