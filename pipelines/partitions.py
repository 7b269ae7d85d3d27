"""Partitions of every scoring asset: the as-of day × the CRM portal.

A day key means "as of the end of that day in the portal's time zone" (today: as of the run).
Dagster counts days in UTC, and a portal east of UTC reaches tomorrow's date up to 14 hours
earlier, so `end_offset=2` makes both UTC today and UTC tomorrow exist: every portal's local today
is always a partition. Scoring refuses a day later than the portal's today. Portals are a dynamic
dimension: with the environment-variable configuration the single portal is `default`.
"""

from __future__ import annotations

import dagster as dg

FIRST_DAY = "2025-01-01"
DEFAULT_PORTAL = "default"

portals = dg.DynamicPartitionsDefinition(name="portals")
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
