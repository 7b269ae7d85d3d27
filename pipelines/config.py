"""One configuration path: environment variables → typed settings, for Dagster and the CLI alike.

`hubspot_settings(portal, env)` is the only place a portal's HubSpotSettings are built: the
`heatsync` command line passes the process environment (after `.env`), the Dagster resource
passes its own fields (credentials resolved from EnvVar at launch) under the same variable names.
`heatsync_config(env)` does the same for heatsync's own settings. An empty variable counts as
unset, and an unset one takes the default written once, in the settings class itself. Nothing is
read at import time, and nothing here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.hubspot import HubSpotSettings
from pipelines.store import PortalStore, default_home
from scoring import ScoringConfig, load_config

# HubSpotSettings field -> environment variable
HUBSPOT_SECRET_VARIABLES = {
    "access_token": "HUBSPOT_ACCESS_TOKEN",
    "client_id": "HUBSPOT_CLIENT_ID",
    "client_secret": "HUBSPOT_CLIENT_SECRET",
    "refresh_token": "HUBSPOT_REFRESH_TOKEN",
}
HUBSPOT_VARIABLES = {
    **HUBSPOT_SECRET_VARIABLES,
    "base_url": "HUBSPOT_BASE_URL",
    "burst_limit": "HUBSPOT_BURST_LIMIT",
}
# HeatsyncConfig field -> environment variable
HEATSYNC_VARIABLES = {
    "home": "HEATSYNC_HOME",
    "locale": "HEATSYNC_LOCALE",
    "scoring_config": "HEATSYNC_SCORING_CONFIG",
    "dry_run": "HEATSYNC_DRY_RUN",
    "backtest_horizon_days": "HEATSYNC_BACKTEST_HORIZON_DAYS",
}
TRUE_WORDS = ("1", "true", "yes")
NO_CREDENTIALS = (
    "No HubSpot credentials: set HUBSPOT_ACCESS_TOKEN (private app or service key) "
    "or HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN (OAuth)."
)


class MissingCredentials(ValueError):
    """Neither a HubSpot access token nor an OAuth refresh token is configured."""


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


def hubspot_settings(portal: str, env: Mapping[str, str]) -> HubSpotSettings:
    """The connection settings of `portal` from environment variables (HUBSPOT_*)."""
    given = {f: _value(env, name) for f, name in HUBSPOT_VARIABLES.items()}
    if not given["access_token"] and not given["refresh_token"]:
        raise MissingCredentials(NO_CREDENTIALS)
    values: dict[str, Any] = {"portal": portal}
    for field in ("access_token", "client_secret", "refresh_token"):
        if given[field]:
            values[field] = SecretStr(str(given[field]))
    if given["client_id"]:
        values["client_id"] = given["client_id"]
    if given["base_url"]:
        values["base_url"] = given["base_url"]
    if given["burst_limit"]:
        values["burst_limit"] = int(str(given["burst_limit"]))
    return HubSpotSettings(**values)


DEFAULT_LOCALE = "en"
DEFAULT_BACKTEST_HORIZON_DAYS = 30


@dataclass(frozen=True)
class HeatsyncConfig:
    """heatsync's own settings: where the stores live, the reps' language, the scoring config,
    dry-run mode and the backtest horizon."""

    home: str = ""
    locale: str = DEFAULT_LOCALE
    scoring_config: str = ""
    dry_run: bool = False
    backtest_horizon_days: int = DEFAULT_BACKTEST_HORIZON_DAYS

    def home_dir(self) -> Path:
        """Where heatsync keeps its stores (and amoCRM its tokens)."""
        return Path(self.home).expanduser().resolve() if self.home else default_home()

    def store(self, portal: str) -> PortalStore:
        return PortalStore(self.home_dir(), portal)

    def scoring(self) -> ScoringConfig:
        return load_config(self.scoring_config or None)


def heatsync_config(env: Mapping[str, str]) -> HeatsyncConfig:
    """heatsync's settings from environment variables (HEATSYNC_*)."""
    horizon = _value(env, HEATSYNC_VARIABLES["backtest_horizon_days"])
    dry_run = (_value(env, HEATSYNC_VARIABLES["dry_run"]) or "").lower() in TRUE_WORDS
    return HeatsyncConfig(
        home=_value(env, HEATSYNC_VARIABLES["home"]) or "",
        locale=_value(env, HEATSYNC_VARIABLES["locale"]) or DEFAULT_LOCALE,
        scoring_config=_value(env, HEATSYNC_VARIABLES["scoring_config"]) or "",
        dry_run=dry_run,
        backtest_horizon_days=int(horizon) if horizon else DEFAULT_BACKTEST_HORIZON_DAYS,
    )
