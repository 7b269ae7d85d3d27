"""The heatsync code location: assets, checks, job, schedule, sensor and resources."""

from __future__ import annotations

import os

import dagster as dg

from pipelines.assets import ALL_ASSETS
from pipelines.resources import HUBSPOT_DEFAULT_BASE_URL, HeatsyncSettings, HubSpotResource
from pipelines.schedules import daily_scoring, daily_scoring_schedule, register_portals

SECRET_VARIABLES = {
    "access_token": "HUBSPOT_ACCESS_TOKEN",
    "client_id": "HUBSPOT_CLIENT_ID",
    "client_secret": "HUBSPOT_CLIENT_SECRET",
    "refresh_token": "HUBSPOT_REFRESH_TOKEN",
}


def hubspot_resource() -> HubSpotResource:
    """Credentials reach the resource only as EnvVar (resolved at launch, never shown in the UI).

    Only variables that are set are referenced, so a portal on a private-app token does not need
    the OAuth variables and vice versa.
    """
    secrets = {
        field: dg.EnvVar(name) for field, name in SECRET_VARIABLES.items() if os.environ.get(name)
    }
    if not secrets:
        secrets["access_token"] = dg.EnvVar("HUBSPOT_ACCESS_TOKEN")
    return HubSpotResource(
        base_url=os.environ.get("HUBSPOT_BASE_URL") or HUBSPOT_DEFAULT_BASE_URL,
        burst_limit=int(os.environ.get("HUBSPOT_BURST_LIMIT", "190")),
        **secrets,
    )


def heatsync_settings() -> HeatsyncSettings:
    return HeatsyncSettings(
        home=os.environ.get("HEATSYNC_HOME", ""),
        locale=os.environ.get("HEATSYNC_LOCALE", "en"),
        scoring_config=os.environ.get("HEATSYNC_SCORING_CONFIG", ""),
        dry_run=os.environ.get("HEATSYNC_DRY_RUN", "").lower() in ("1", "true", "yes"),
        backtest_horizon_days=int(os.environ.get("HEATSYNC_BACKTEST_HORIZON_DAYS") or 30),
    )


def build_defs() -> dg.Definitions:
    """The code location as the environment configures it now."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[daily_scoring],
        schedules=[daily_scoring_schedule],
        sensors=[register_portals],
        resources={"hubspot": hubspot_resource(), "heatsync": heatsync_settings()},
    )


defs = build_defs()
