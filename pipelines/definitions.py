"""The heatsync code location: assets, checks, jobs, schedules, sensors and resources.

Nothing is read at import time: `defs` is built when Dagster loads the code location (and
`build_defs` whenever it is called), from the environment of that moment: the portals (a portals
file, or the one portal the environment configures), the credentials to reference, heatsync's
settings, the first day partition, the schedules' times and where failure notices go.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from pipelines.assets import build_assets, build_calibration
from pipelines.config import heatsync_config
from pipelines.crms import SECRET_ROLES
from pipelines.fast_lane import hot_lane, hot_signals
from pipelines.notify import notify_resource, notify_sensors
from pipelines.partitions import day_by_portal, first_day
from pipelines.portals import Portal, portals_for_definitions
from pipelines.resources import CrmConnection, CrmResource, HeatsyncSettings
from pipelines.schedules import build_schedules, daily_scoring, register_portals, weekly_calibration


def _connection(portal: Portal, env: Mapping[str, str]) -> dict[str, Any]:
    """A portal's connection fields: credentials only as EnvVar (resolved at launch, never shown
    in the UI), and only those whose variable is set, so that a portal on a long-lived or
    private-app token does not need the OAuth variables and vice versa."""
    secrets: dict[str, Any] = {}
    plain: dict[str, str] = {}
    for role, name in portal.variables().items():
        if role in SECRET_ROLES:
            if (env.get(name) or "").strip():
                secrets[role] = dg.EnvVar(name)
        else:
            plain[role] = (env.get(name) or "").strip()
    plain.update(portal.values())
    if not secrets and portal.entry is None and "access_token" in portal.crm.variables:
        secrets["access_token"] = dg.EnvVar(portal.crm.variables["access_token"])
    named = {} if portal.entry is None else dict(portal.entry.credentials)
    options = portal.options(env)
    return {"crm": portal.crm.name, "options": options, "named": named, **plain, **secrets}


def crm_resource(env: Mapping[str, str], portals: list[Portal] | None = None) -> CrmResource:
    """Every portal's CRM connection: a portals file's by name, else the environment's portal
    (its CRM is HEATSYNC_CRM, else the one whose credentials are set). A portal whose
    credentials are not set still loads; its runs fail saying which variable to set, and the
    other portals run."""
    portals = portals_for_definitions(env) if portals is None else portals
    if portals[0].entry is None:
        return CrmResource(**_connection(portals[0], env))
    return CrmResource(portals={p.name: CrmConnection(**_connection(p, env)) for p in portals})


def heatsync_settings(
    env: Mapping[str, str], portals: list[Portal] | None = None
) -> HeatsyncSettings:
    """heatsync's settings (HEATSYNC_*), and what each portal of a portals file sets itself."""
    portals = portals_for_definitions(env) if portals is None else portals
    base = heatsync_config(env)
    if portals[0].entry is None:
        return HeatsyncSettings.of(portals[0].config(base))
    return HeatsyncSettings.of(base, {p.name: p.config(base) for p in portals})


def build_defs(env: Mapping[str, str] | None = None) -> dg.Definitions:
    """The code location as the environment (by default the process's, now) configures it."""
    env = os.environ if env is None else env
    partitions = day_by_portal(first_day(env=env))
    portals = portals_for_definitions(env)
    crms = sorted({p.crm.name for p in portals})
    return dg.Definitions(
        assets=[*build_assets(partitions, crms), build_calibration(partitions)],
        jobs=[daily_scoring, weekly_calibration, hot_lane],
        schedules=build_schedules(env),
        sensors=[register_portals, hot_signals, *notify_sensors(env)],
        resources={
            "crm": crm_resource(env, portals),
            "heatsync": heatsync_settings(env, portals),
            "notify": notify_resource(env),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` and the daemon load (workspace.yaml, [tool.dagster])."""
    return build_defs()
