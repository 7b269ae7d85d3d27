"""The CRMs heatsync runs on, one registration line each, and which one the environment configures.

Each connector package describes itself in a `connectors.spec.CrmSpec` (`connectors/<crm>/env.py`):
how its connector is built from environment variables, which variables hold its connection by
role, its reps' default language. Everything else in `pipelines/` is CRM-neutral: the assets, the
run layer, the CLI, the portals file. Adding a CRM is its connector package, its sandbox, its
tests and one line in `CRMS`.

Without a portals file (pipelines.portals) the environment configures one portal: its CRM is
`HEATSYNC_CRM` (hubspot|amocrm), or unset, the first CRM in `CRMS` whose credentials are set
(HubSpot before amoCRM). Nothing here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.amocrm.env import CRM as AMOCRM
from connectors.hubspot.env import CRM as HUBSPOT
from connectors.spec import ROLES, SECRET_ROLES, CrmSpec, MissingCredentials

__all__ = ["CRMS", "ROLES", "SECRET_ROLES", "Crm", "chosen_crm", "crm_for_definitions"]

Crm = CrmSpec
CRM_VARIABLE = "HEATSYNC_CRM"

# The registry: one line per CRM. Unless HEATSYNC_CRM says, the first whose credentials are set.
CRMS: dict[str, Crm] = {crm.name: crm for crm in (HUBSPOT, AMOCRM)}
DEFAULT_CRM = "hubspot"


class NoCrmConfigured(MissingCredentials):
    """No CRM's credentials are set (or HEATSYNC_CRM names no registered CRM)."""


def no_crm_message() -> str:
    ways = "; or ".join(f"for {crm.name}: {crm.needs}" for crm in CRMS.values())
    return (
        f"No CRM credentials: set {ways}. When both are set, {CRM_VARIABLE} "
        f"({'|'.join(CRMS)}) picks one."
    )


def crm_named(name: str) -> Crm:
    """The registered CRM called `name` (any case); NoCrmConfigured naming the known ones."""
    crm = CRMS.get(name.strip().lower())
    if crm is None:
        raise NoCrmConfigured(f"{name!r} is not a CRM heatsync knows: {', '.join(CRMS)}")
    return crm


def chosen_crm(env: Mapping[str, str]) -> Crm:
    """The configured CRM: HEATSYNC_CRM, else the first whose credentials are set.
    NoCrmConfigured when HEATSYNC_CRM is unknown or no CRM's credentials are set."""
    named = (env.get(CRM_VARIABLE) or "").strip()
    if named:
        try:
            return crm_named(named)
        except NoCrmConfigured as exc:
            raise NoCrmConfigured(f"{CRM_VARIABLE}={exc}") from None
    for crm in CRMS.values():
        if crm.configured(env):
            return crm
    raise NoCrmConfigured(no_crm_message())


def crm_for_definitions(env: Mapping[str, str]) -> Crm:
    """The CRM the code location is built for: the configured one, else HEATSYNC_CRM or the
    default, so that the UI loads without credentials (a run then fails with the reason)."""
    try:
        return chosen_crm(env)
    except NoCrmConfigured:
        return CRMS.get((env.get(CRM_VARIABLE) or "").strip().lower(), CRMS[DEFAULT_CRM])
