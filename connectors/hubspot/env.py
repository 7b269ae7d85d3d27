"""HubSpot configured by environment variables (HUBSPOT_*), and its registration (`CRM`).

A private-app token or service key (`HUBSPOT_ACCESS_TOKEN`), or OAuth (`HUBSPOT_CLIENT_ID`,
`HUBSPOT_CLIENT_SECRET`, `HUBSPOT_REFRESH_TOKEN`); `HUBSPOT_BASE_URL` for any HubSpot-compatible
server and `HUBSPOT_BURST_LIMIT` for the requests per 10 s heatsync may spend. An empty variable
counts as unset and takes the default of `HubSpotSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from connectors.hubspot.settings import HubSpotSettings
from connectors.spec import CrmSpec, MissingCredentials

if TYPE_CHECKING:
    from connectors.base import CrmConnector

# HubSpotSettings field -> environment variable
ENV_VARIABLES = {
    "access_token": "HUBSPOT_ACCESS_TOKEN",
    "client_id": "HUBSPOT_CLIENT_ID",
    "client_secret": "HUBSPOT_CLIENT_SECRET",
    "refresh_token": "HUBSPOT_REFRESH_TOKEN",
    "base_url": "HUBSPOT_BASE_URL",
    "burst_limit": "HUBSPOT_BURST_LIMIT",
}
NEEDS = (
    "HUBSPOT_ACCESS_TOKEN (private app or service key) or HUBSPOT_CLIENT_ID, "
    "HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN (OAuth)"
)


def settings_from_env(portal: str, env: Mapping[str, str]) -> HubSpotSettings:
    """The connection settings of `portal` from environment variables (HUBSPOT_*);
    MissingCredentials when neither a token nor an OAuth refresh token is set."""
    given = {f: (env.get(name) or "").strip() for f, name in ENV_VARIABLES.items()}
    if not given["access_token"] and not given["refresh_token"]:
        raise MissingCredentials(f"No HubSpot credentials: set {NEEDS}.")
    values: dict[str, Any] = {"portal": portal}
    for field in ("access_token", "client_secret", "refresh_token"):
        if given[field]:
            values[field] = SecretStr(given[field])
    for field in ("client_id", "base_url"):
        if given[field]:
            values[field] = given[field]
    if given["burst_limit"]:
        try:
            values["burst_limit"] = int(given["burst_limit"])
        except ValueError:
            raise MissingCredentials(
                f"HUBSPOT_BURST_LIMIT={given['burst_limit']!r} is not a whole number"
            ) from None
    return HubSpotSettings(**values)


def _build(portal: str, env: Mapping[str, str], state_dir: Path) -> CrmConnector:
    from connectors.hubspot.connector import HubSpotConnector

    return HubSpotConnector(settings_from_env(portal, env))


CRM = CrmSpec(
    name="hubspot",
    build=_build,
    variables={
        role: ENV_VARIABLES[role]
        for role in ("base_url", "access_token", "client_id", "client_secret", "refresh_token")
    },
    options=(ENV_VARIABLES["burst_limit"],),
    needs=NEEDS,
    locale="en",
)
