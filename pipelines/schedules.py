"""The daily schedule (today's partition of every portal), the weekly recalibration schedule and
the sensor that registers the configured portals as partitions."""

import dagster as dg
import pandas as pd

from pipelines.partitions import DEFAULT_PORTAL, PORTAL_TAG, PORTALS, partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
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
    context: dg.ScheduleEvaluationContext, crm: CrmResource, heatsync: HeatsyncSettings
) -> list[dg.RunRequest]:
    """One run per configured portal for *today* in that portal's time zone (its own setting,
    else as its store last read it from the CRM)."""
    return _todays_runs(context, crm, heatsync)


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


@dg.schedule(
    job=weekly_calibration,
    cron_schedule="0 5 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def weekly_calibration_schedule(
    context: dg.ScheduleEvaluationContext, crm: CrmResource, heatsync: HeatsyncSettings
) -> list[dg.RunRequest]:
    """Mondays 05:00 UTC, an hour before the daily run: one recalibration per registered portal
    for its today, so that the day's scores already use a config adopted then."""
    return _todays_runs(context, crm, heatsync)


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
