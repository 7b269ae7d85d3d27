"""The daily schedule (today's partition of every portal) and the sensor that registers portals."""

import dagster as dg
import pandas as pd

from pipelines.partitions import DEFAULT_PORTAL, PORTALS, partition_key, portals
from pipelines.resources import HeatsyncSettings
from pipelines.run.asof import local_today

daily_scoring = dg.define_asset_job(
    "daily_scoring",
    selection=dg.AssetSelection.groups("hubspot", "heatsync"),
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
    now = pd.Timestamp(context.scheduled_execution_time or pd.Timestamp.now(tz="UTC"))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    requests = []
    for portal in context.instance.get_dynamic_partitions(PORTALS):
        tz = heatsync.store(portal).time_zone()
        key = partition_key(local_today(tz, now), portal)
        requests.append(dg.RunRequest(run_key=f"{key}@{now.date()}", partition_key=key))
    return requests


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
