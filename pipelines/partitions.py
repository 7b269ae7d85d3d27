"""Partitions of every scoring asset: the as-of day × the CRM portal.

A day key means "as of the end of that day in the portal's time zone" (today: as of the run).
Dagster counts days in UTC, and a portal east of UTC reaches tomorrow's date up to 14 hours
earlier, so `end_offset=2` makes both UTC today and UTC tomorrow exist: every portal's local today
is always a partition. Scoring refuses a day later than the portal's today. Portals are a dynamic
dimension: the portals of the portals file, or without one the environment's portal, `default`
(pipelines.portals).

The first day is HEATSYNC_FIRST_DAY (YYYY-MM-DD) or, unset, DEFAULT_WINDOW_DAYS before today
(UTC), read when the definitions are built (`day_by_portal()`), never at import: the UI's
partition coverage then counts the days worth backfilling, not years nobody will score.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from pipelines.portals import DEFAULT_PORTAL

__all__ = [
    "DEFAULT_PORTAL",
    "PORTALS",
    "PORTAL_TAG",
    "day_by_portal",
    "days",
    "first_day",
    "portals",
]

FIRST_DAY_VARIABLE = "HEATSYNC_FIRST_DAY"
DEFAULT_WINDOW_DAYS = 90
PORTALS = "portals"  # the name of the dynamic portal dimension
# Every run of a portal (daily, backfill, fast lane) carries it: dagster.yaml lets one run per
# portal at a time.
PORTAL_TAG = "heatsync/portal"


def first_day(today: date | None = None, env: Mapping[str, str] | None = None) -> str:
    """The first day partition: HEATSYNC_FIRST_DAY (of `env`, by default the process's
    environment now), or DEFAULT_WINDOW_DAYS before today (UTC)."""
    env = os.environ if env is None else env
    configured = (env.get(FIRST_DAY_VARIABLE) or "").strip()
    if configured:
        try:
            return date.fromisoformat(configured).isoformat()
        except ValueError:
            raise ValueError(
                f"{FIRST_DAY_VARIABLE}={configured!r} is not a date (YYYY-MM-DD)"
            ) from None
    today = today or datetime.now(UTC).date()
    return (today - timedelta(days=DEFAULT_WINDOW_DAYS)).isoformat()


portals = dg.DynamicPartitionsDefinition(name=PORTALS)


def days(first: str | None = None) -> dg.DailyPartitionsDefinition:
    """Day partitions from `first` (by default `first_day()`) through UTC tomorrow."""
    return dg.DailyPartitionsDefinition(start_date=first or first_day(), end_offset=2)


def day_by_portal(first: str | None = None) -> dg.MultiPartitionsDefinition:
    """The day × portal partitions of every scoring asset."""
    return dg.MultiPartitionsDefinition({"date": days(first), "portal": portals})


def split_key(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(day, portal) of the running partition."""
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey), "scoring assets are day × portal partitioned"
    dims = key.keys_by_dimension
    return dims["date"], dims["portal"]


def partition_key(day: str, portal: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day, "portal": portal})
