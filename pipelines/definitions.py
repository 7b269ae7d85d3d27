"""The heatsync code location: assets, checks, jobs, schedules, sensor and resources.

Nothing is read at import time: `defs` is built when Dagster loads the code location (and
`build_defs` whenever it is called), from the environment of that moment: the credentials to
reference (of the configured CRM), heatsync's settings and the first day partition.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from pipelines.assets import build_assets, build_calibration
from pipelines.config import heatsync_config
from pipelines.crms import SECRET_ROLES, crm_for_definitions
from pipelines.partitions import day_by_portal, first_day
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.schedules import (
    daily_scoring,
    daily_scoring_schedule,
    register_portals,
    weekly_calibration,
    weekly_calibration_schedule,
)


def crm_resource(env: Mapping[str, str]) -> CrmResource:
    """The configured CRM (pipelines.crms: HEATSYNC_CRM, else the one whose credentials are
    set). Credentials reach the resource only as EnvVar (resolved at launch, never shown in
    the UI).

    Only variables that are set are referenced, so a portal on a long-lived or private-app
    token does not need the OAuth variables and vice versa.
    """
    crm = crm_for_definitions(env)
    secrets: dict[str, str | dg.EnvVar] = {}
    plain: dict[str, str] = {}
    for role, name in crm.variables.items():
        if role in SECRET_ROLES:
            if (env.get(name) or "").strip():
                secrets[role] = dg.EnvVar(name)
        else:
            plain[role] = (env.get(name) or "").strip()
    if not secrets and "access_token" in crm.variables:
        secrets["access_token"] = dg.EnvVar(crm.variables["access_token"])
    options = {name: env[name].strip() for name in crm.options if (env.get(name) or "").strip()}
    return CrmResource(crm=crm.name, options=options, **plain, **secrets)


def heatsync_settings(env: Mapping[str, str]) -> HeatsyncSettings:
    return HeatsyncSettings.of(heatsync_config(env))


def build_defs(env: Mapping[str, str] | None = None) -> dg.Definitions:
    """The code location as the environment (by default the process's, now) configures it."""
    env = os.environ if env is None else env
    partitions = day_by_portal(first_day(env=env))
    crm = crm_resource(env)
    return dg.Definitions(
        assets=[*build_assets(partitions, crm.crm), build_calibration(partitions)],
        jobs=[daily_scoring, weekly_calibration],
        schedules=[daily_scoring_schedule, weekly_calibration_schedule],
        sensors=[register_portals],
        resources={"crm": crm, "heatsync": heatsync_settings(env)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` and the daemon load (workspace.yaml, [tool.dagster])."""
    return build_defs()
