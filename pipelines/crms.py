"""The CRMs heatsync runs on, one registration line each, and which one is configured.

A `Crm` says how to build its connector (`connectors.base.CrmConnector`) from environment
variables and heatsync's settings, which variables hold its connection (by the role the
CRM-neutral Dagster resource gives them: secrets reach Dagster only as EnvVar), which extra
options it reads, and the Dagster pool its API steps share. Everything else in `pipelines/` is
CRM-neutral: the assets, the run layer, the CLI. Adding a CRM is its connector package, its
sandbox, its tests and one line in `CRMS`.

The configured CRM is `HEATSYNC_CRM` (hubspot|amocrm); unset, the first CRM in `CRMS` whose
credentials are set (HubSpot before amoCRM). Nothing here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.config import (
    HUBSPOT_SECRET_VARIABLES,
    HUBSPOT_VARIABLES,
    HeatsyncConfig,
    MissingCredentials,
    heatsync_config,
    hubspot_settings,
)

if TYPE_CHECKING:
    from connectors.base import CrmConnector

CRM_VARIABLE = "HEATSYNC_CRM"
# The connection roles the CRM-neutral resource holds; those in SECRET_ROLES only as EnvVar.
ROLES = (
    "base_url",
    "access_token",
    "client_id",
    "client_secret",
    "redirect_uri",
    "refresh_token",
    "auth_code",
)
SECRET_ROLES = ("access_token", "client_id", "client_secret", "refresh_token", "auth_code")

Build = Callable[[str, Mapping[str, str], HeatsyncConfig], "CrmConnector"]


@dataclass(frozen=True)
class Crm:
    """One CRM: how its connector is built and which environment variables configure it."""

    name: str  # as in HEATSYNC_CRM, the Dagster kind and the account keys of the store
    build: Build  # (portal, environment, heatsync's settings) -> connector
    variables: Mapping[str, str]  # role (ROLES) -> environment variable
    options: tuple[str, ...] = ()  # further environment variables it reads (not secrets)
    needs: str = ""  # what to set, for the error when nothing is configured

    @property
    def pool(self) -> str:
        """The Dagster pool of the steps that call this CRM's API."""
        return f"{self.name}_api"

    def configured(self, env: Mapping[str, str]) -> bool:
        """Whether any of its credentials (the variables of SECRET_ROLES) is set."""
        names = (self.variables[role] for role in SECRET_ROLES if role in self.variables)
        return any((env.get(name) or "").strip() for name in names)

    def connector(
        self, portal: str, env: Mapping[str, str], config: HeatsyncConfig | None = None
    ) -> CrmConnector:
        """The portal's connector; MissingCredentials (a ValueError) naming what is missing."""
        return self.build(portal, env, config or heatsync_config(env))


def _hubspot(portal: str, env: Mapping[str, str], config: HeatsyncConfig) -> CrmConnector:
    from connectors.hubspot import HubSpotConnector

    return HubSpotConnector(hubspot_settings(portal, env))


def _amocrm(portal: str, env: Mapping[str, str], config: HeatsyncConfig) -> CrmConnector:
    """amoCRM's rotating refresh tokens live under `<heatsync home>/tokens` unless
    AMOCRM_TOKEN_DIR says otherwise."""
    from connectors.amocrm import ENV_VARIABLES, AmoCrmConnector, settings_from_env

    overrides: dict[str, Any] = {}
    if not (env.get(ENV_VARIABLES["token_dir"]) or "").strip():
        overrides["token_dir"] = config.home_dir() / "tokens"
    try:
        settings = settings_from_env(portal, env, **overrides)
    except ValueError as exc:
        problems = "; ".join(
            str(e.get("msg", e)).removeprefix("Value error, ")
            for e in getattr(exc, "errors", lambda: [])()
        )
        raise MissingCredentials(
            f"amoCRM settings: {problems or exc}. Set {AMOCRM_NEEDS}."
        ) from None
    return AmoCrmConnector(settings)


HUBSPOT_ROLES = {
    field: HUBSPOT_VARIABLES[field] for field in (*HUBSPOT_SECRET_VARIABLES, "base_url")
}
HUBSPOT_OPTIONS = (HUBSPOT_VARIABLES["burst_limit"],)
HUBSPOT_NEEDS = (
    "HUBSPOT_ACCESS_TOKEN (private app or service key) or HUBSPOT_CLIENT_ID, "
    "HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN (OAuth)"
)
AMOCRM_ROLES = {role: "AMOCRM_" + role.upper() for role in ROLES}
AMOCRM_OPTIONS = ("AMOCRM_TOKEN_DIR", "AMOCRM_UNOWNED_USER_IDS")
AMOCRM_NEEDS = (
    "AMOCRM_BASE_URL (the account's root, e.g. https://example.amocrm.ru) with "
    "AMOCRM_ACCESS_TOKEN (a long-lived token) or AMOCRM_CLIENT_ID, AMOCRM_CLIENT_SECRET, "
    "AMOCRM_REDIRECT_URI and AMOCRM_REFRESH_TOKEN (OAuth)"
)

# The registry: one line per CRM. Unless HEATSYNC_CRM says, the first whose credentials are set.
CRMS: dict[str, Crm] = {
    crm.name: crm
    for crm in (
        Crm("hubspot", _hubspot, HUBSPOT_ROLES, HUBSPOT_OPTIONS, HUBSPOT_NEEDS),
        Crm("amocrm", _amocrm, AMOCRM_ROLES, AMOCRM_OPTIONS, AMOCRM_NEEDS),
    )
}
DEFAULT_CRM = "hubspot"


class NoCrmConfigured(MissingCredentials):
    """No CRM's credentials are set (or HEATSYNC_CRM names no registered CRM)."""


def no_crm_message() -> str:
    ways = "; or ".join(f"for {crm.name}: {crm.needs}" for crm in CRMS.values())
    return (
        f"No CRM credentials: set {ways}. When both are set, {CRM_VARIABLE} "
        f"({'|'.join(CRMS)}) picks one."
    )


def chosen_crm(env: Mapping[str, str]) -> Crm:
    """The configured CRM: HEATSYNC_CRM, else the first whose credentials are set.
    NoCrmConfigured when HEATSYNC_CRM is unknown or no CRM's credentials are set."""
    named = (env.get(CRM_VARIABLE) or "").strip().lower()
    if named:
        if named not in CRMS:
            raise NoCrmConfigured(
                f"{CRM_VARIABLE}={named!r} is not a CRM heatsync knows: {', '.join(CRMS)}"
            )
        return CRMS[named]
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


def connector_from_env(
    portal: str, env: Mapping[str, str], config: HeatsyncConfig | None = None
) -> tuple[Crm, CrmConnector]:
    """The configured CRM and `portal`'s connector, from environment variables."""
    crm = chosen_crm(env)
    return crm, crm.connector(portal, env, config)
