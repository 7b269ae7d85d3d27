"""Partitions of every scoring asset: the as-of day × the CRM portal.

A day key means "as of the end of that day in the portal's time zone" (today: as of the run).
Dagster counts days in UTC, and a portal east of UTC reaches tomorrow's date up to 14 hours
earlier, so `end_offset=2` makes both UTC today and UTC tomorrow exist: every portal's local today
is always a partition. Scoring refuses a day later than the portal's today. Portals are a dynamic
dimension: with the environment-variable configuration the single portal is `default`.

The first day is HEATSYNC_FIRST_DAY (YYYY-MM-DD) or, unset, DEFAULT_WINDOW_DAYS before today
(UTC), read when the definitions are loaded: the UI's partition coverage then counts the days
worth backfilling, not years nobody will score.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg

FIRST_DAY_VARIABLE = "HEATSYNC_FIRST_DAY"
DEFAULT_WINDOW_DAYS = 90
DEFAULT_PORTAL = "default"
PORTALS = "portals"  # the name of the dynamic portal dimension


def first_day(today: date | None = None) -> str:
    """The first day partition: HEATSYNC_FIRST_DAY, or DEFAULT_WINDOW_DAYS before today (UTC)."""
    configured = os.environ.get(FIRST_DAY_VARIABLE, "").strip()
    if configured:
        try:
            return date.fromisoformat(configured).isoformat()
        except ValueError:
            raise ValueError(
                f"{FIRST_DAY_VARIABLE}={configured!r} is not a date (YYYY-MM-DD)"
            ) from None
    today = today or datetime.now(UTC).date()
    return (today - timedelta(days=DEFAULT_WINDOW_DAYS)).isoformat()


FIRST_DAY = first_day()

portals = dg.DynamicPartitionsDefinition(name=PORTALS)
days = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=2)
day_by_portal = dg.MultiPartitionsDefinition({"date": days, "portal": portals})


def split_key(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(day, portal) of the running partition."""
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey), "scoring assets are day × portal partitioned"
    dims = key.keys_by_dimension
    return dims["date"], dims["portal"]


def partition_key(day: str, portal: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day, "portal": portal})
