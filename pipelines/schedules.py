"""The daily schedule (today's partition of every portal), the weekly recalibration schedule and
the sensor that registers portals."""

import dagster as dg
import pandas as pd

from pipelines.partitions import DEFAULT_PORTAL, PORTALS, partition_key, portals
from pipelines.resources import HeatsyncSettings
from pipelines.run.asof import local_today

daily_scoring = dg.define_asset_job(
    "daily_scoring",
    selection=dg.AssetSelection.groups("crm", "heatsync"),
    description="Extract, score, write fields back and create tasks for one day × portal.",
)


@dg.schedule(
    job=daily_scoring,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_scoring_schedule(
    context: dg.ScheduleEvaluationContext, heatsync: HeatsyncSettings
) -> list[dg.RunRequest]:
    """One run per registered portal for *today* in that portal's time zone (as its store, found
    through the heatsync resource, last read it from the CRM)."""
    return _todays_runs(context, heatsync)


def _todays_runs(
    context: dg.ScheduleEvaluationContext, heatsync: HeatsyncSettings
) -> list[dg.RunRequest]:
    """One run per registered portal for its today, in its time zone (as its store says)."""
    now = pd.Timestamp(context.scheduled_execution_time or pd.Timestamp.now(tz="UTC"))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    requests = []
    for portal in context.instance.get_dynamic_partitions(PORTALS):
        tz = heatsync.store(portal).time_zone()
        key = partition_key(local_today(tz, now), portal)
        requests.append(dg.RunRequest(run_key=f"{key}@{now.date()}", partition_key=key))
    return requests


weekly_calibration = dg.define_asset_job(
    "weekly_calibration",
    selection=dg.AssetSelection.groups("calibration"),
    description="Recalibrate one portal's scoring config from its own store; adopt the learned "
    "config only when it beats the current one on a later time split.",
)


@dg.schedule(
    job=weekly_calibration,
    cron_schedule="0 5 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def weekly_calibration_schedule(
    context: dg.ScheduleEvaluationContext, heatsync: HeatsyncSettings
) -> list[dg.RunRequest]:
    """Mondays 05:00 UTC, an hour before the daily run: one recalibration per registered portal
    for its today, so that the day's scores already use a config adopted then."""
    return _todays_runs(context, heatsync)


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers the portal configured by environment variables as a partition.",
)
def register_portals(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(PORTALS))
    missing = [p for p in (DEFAULT_PORTAL,) if p not in known]
    return dg.SensorResult(
        dynamic_partitions_requests=[portals.build_add_request(missing)] if missing else []
    )
