"""The heatsync code location: assets, checks, jobs, schedules, sensor and resources.

Nothing is read at import time: `defs` is built when Dagster loads the code location (and
`build_defs` whenever it is called), from the environment of that moment: the credentials to
reference, heatsync's settings and the first day partition.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from pipelines.assets import build_assets, build_calibration
from pipelines.config import HUBSPOT_SECRET_VARIABLES, HUBSPOT_VARIABLES, heatsync_config
from pipelines.partitions import day_by_portal, first_day
from pipelines.resources import HeatsyncSettings, HubSpotResource
from pipelines.schedules import (
    daily_scoring,
    daily_scoring_schedule,
    register_portals,
    weekly_calibration,
    weekly_calibration_schedule,
)


def hubspot_resource(env: Mapping[str, str]) -> HubSpotResource:
    """Credentials reach the resource only as EnvVar (resolved at launch, never shown in the UI).

    Only variables that are set are referenced, so a portal on a private-app token does not need
    the OAuth variables and vice versa.
    """
    secrets = {
        field: dg.EnvVar(name) for field, name in HUBSPOT_SECRET_VARIABLES.items() if env.get(name)
    }
    if not secrets:
        secrets["access_token"] = dg.EnvVar(HUBSPOT_SECRET_VARIABLES["access_token"])
    burst = (env.get(HUBSPOT_VARIABLES["burst_limit"]) or "").strip()
    return HubSpotResource(
        base_url=(env.get(HUBSPOT_VARIABLES["base_url"]) or "").strip(),
        burst_limit=int(burst) if burst else None,
        **secrets,
    )


def heatsync_settings(env: Mapping[str, str]) -> HeatsyncSettings:
    return HeatsyncSettings.of(heatsync_config(env))


def build_defs(env: Mapping[str, str] | None = None) -> dg.Definitions:
    """The code location as the environment (by default the process's, now) configures it."""
    env = os.environ if env is None else env
    partitions = day_by_portal(first_day(env=env))
    return dg.Definitions(
        assets=[*build_assets(partitions), build_calibration(partitions)],
        jobs=[daily_scoring, weekly_calibration],
        schedules=[daily_scoring_schedule, weekly_calibration_schedule],
        sensors=[register_portals],
        resources={"hubspot": hubspot_resource(env), "heatsync": heatsync_settings(env)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` and the daemon load (workspace.yaml, [tool.dagster])."""
    return build_defs()
