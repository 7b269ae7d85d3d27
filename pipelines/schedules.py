"""The daily schedule (today's partition of every portal), the weekly recalibration schedule and
the sensor that registers the configured portals as partitions.

The schedules' times are per deployment: HEATSYNC_DAILY_CRON (default 06:00 every day),
HEATSYNC_WEEKLY_CRON (default Mondays 05:00, an hour before the daily run) in the time zone
HEATSYNC_SCHEDULE_TIMEZONE (default UTC), read when the definitions are built
(`build_schedules`). The module's `daily_scoring_schedule` and `weekly_calibration_schedule` are
the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import pandas as pd

from pipelines.config import SettingsError
from pipelines.partitions import DEFAULT_PORTAL, PORTAL_TAG, PORTALS, partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.run.asof import local_today

daily_scoring = dg.define_asset_job(
    "daily_scoring",
    selection=dg.AssetSelection.groups("crm", "heatsync"),
    description="Extract, score, write fields back and create tasks for one day × portal.",
)


DAILY_CRON_VARIABLE = "HEATSYNC_DAILY_CRON"
WEEKLY_CRON_VARIABLE = "HEATSYNC_WEEKLY_CRON"
TIMEZONE_VARIABLE = "HEATSYNC_SCHEDULE_TIMEZONE"
DEFAULT_DAILY_CRON = "0 6 * * *"
DEFAULT_WEEKLY_CRON = "0 5 * * 1"
DEFAULT_TIMEZONE = "UTC"


def daily_schedule(
    cron: str = DEFAULT_DAILY_CRON, timezone: str = DEFAULT_TIMEZONE
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_scoring_schedule",
        job=daily_scoring,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def daily_scoring_schedule(
        context: dg.ScheduleEvaluationContext, crm: CrmResource, heatsync: HeatsyncSettings
    ) -> list[dg.RunRequest]:
        """One run per configured portal for *today* in that portal's time zone (its own
        setting, else as its store last read it from the CRM)."""
        return _todays_runs(context, crm, heatsync)

    return daily_scoring_schedule


def _todays_runs(
    context: dg.ScheduleEvaluationContext, crm: CrmResource, heatsync: HeatsyncSettings
) -> list[dg.RunRequest]:
    """One run per registered portal for its today, in its time zone. With a portals file only
    its portals run (a portal removed from it keeps its history but is no longer scheduled)."""
    now = pd.Timestamp(context.scheduled_execution_time or pd.Timestamp.now(tz="UTC"))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    configured = crm.names()
    requests = []
    for portal in context.instance.get_dynamic_partitions(PORTALS):
        if configured and portal not in configured:
            continue
        tz = heatsync.values(portal).time_zone or heatsync.store(portal).time_zone()
        key = partition_key(local_today(tz, now), portal)
        requests.append(
            dg.RunRequest(
                run_key=f"{key}@{now.date()}", partition_key=key, tags={PORTAL_TAG: portal}
            )
        )
    return requests


weekly_calibration = dg.define_asset_job(
    "weekly_calibration",
    selection=dg.AssetSelection.groups("calibration"),
    description="Recalibrate one portal's scoring config from its own store; adopt the learned "
    "config only when it beats the current one on a later time split.",
)


def weekly_schedule(
    cron: str = DEFAULT_WEEKLY_CRON, timezone: str = DEFAULT_TIMEZONE
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="weekly_calibration_schedule",
        job=weekly_calibration,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def weekly_calibration_schedule(
        context: dg.ScheduleEvaluationContext, crm: CrmResource, heatsync: HeatsyncSettings
    ) -> list[dg.RunRequest]:
        """By default Mondays 05:00, an hour before the daily run: one recalibration per
        registered portal for its today, so that the day's scores already use a config
        adopted then."""
        return _todays_runs(context, crm, heatsync)

    return weekly_calibration_schedule


def _setting(env: Mapping[str, str], name: str, default: str) -> str:
    return (env.get(name) or "").strip() or default


def build_schedules(env: Mapping[str, str]) -> list[dg.ScheduleDefinition]:
    """The daily and weekly schedules at the times `env` sets (HEATSYNC_DAILY_CRON,
    HEATSYNC_WEEKLY_CRON, HEATSYNC_SCHEDULE_TIMEZONE); a value that is not a cron expression or
    a time zone is a SettingsError naming its variable."""
    timezone = _setting(env, TIMEZONE_VARIABLE, DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{TIMEZONE_VARIABLE}={timezone!r} is not a time zone (e.g. UTC, Europe/Riga)"
        ) from None
    schedules = []
    for variable, default, make in (
        (DAILY_CRON_VARIABLE, DEFAULT_DAILY_CRON, daily_schedule),
        (WEEKLY_CRON_VARIABLE, DEFAULT_WEEKLY_CRON, weekly_schedule),
    ):
        cron = _setting(env, variable, default)
        try:
            schedules.append(make(cron, timezone))
        except dg.DagsterInvalidDefinitionError:
            raise SettingsError(
                f"{variable}={cron!r} is not a cron expression (minute hour day month weekday, "
                f"e.g. {default!r})"
            ) from None
    return schedules


daily_scoring_schedule = daily_schedule()
weekly_calibration_schedule = weekly_schedule()


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers every portal of the portals file (without one, the portal the "
    "environment configures) as a partition.",
)
def register_portals(context: dg.SensorEvaluationContext, crm: CrmResource) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(PORTALS))
    missing = [p for p in crm.names() or [DEFAULT_PORTAL] if p not in known]
    return dg.SensorResult(
        dynamic_partitions_requests=[portals.build_add_request(missing)] if missing else []
    )
