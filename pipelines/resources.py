"""Dagster resources: the CRM connection (secrets only through EnvVar) and heatsync's settings.

Both hand their values to pipelines.config, the one path to typed settings that the `heatsync`
command line uses too; an empty field means "not set" and takes the default written there.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from connectors.hubspot import HubSpotConnector
from pipelines.config import (
    DEFAULT_BACKTEST_HORIZON_DAYS,
    DEFAULT_LOCALE,
    HUBSPOT_VARIABLES,
    HeatsyncConfig,
    MissingCredentials,
    hubspot_settings,
)
from pipelines.store import PortalStore
from scoring import ScoringConfig


class HubSpotResource(dg.ConfigurableResource):
    """One HubSpot portal: a private-app / service-key token, or an OAuth refresh token."""

    access_token: str = ""
    base_url: str = Field(default="", description="HubSpot's API (empty: the public API)")
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    burst_limit: int | None = Field(
        default=None, description="requests per 10 s this app may use (empty: HubSpot's default)"
    )

    def environment(self) -> dict[str, str]:
        """The resource's values under the environment variables they stand for."""
        values = {field: getattr(self, field) for field in HUBSPOT_VARIABLES}
        return {
            name: "" if values[field] is None else str(values[field])
            for field, name in HUBSPOT_VARIABLES.items()
        }

    def connector(self, portal: str) -> HubSpotConnector:
        try:
            settings = hubspot_settings(portal, self.environment())
        except MissingCredentials as exc:
            raise dg.Failure(str(exc)) from None
        return HubSpotConnector(settings)


class HeatsyncSettings(dg.ConfigurableResource):
    """Where the local store lives, the reps' language, the scoring config, and dry-run mode."""

    home: str = ""
    locale: str = DEFAULT_LOCALE
    scoring_config: str = ""
    dry_run: bool = False
    backtest_horizon_days: int = Field(
        default=DEFAULT_BACKTEST_HORIZON_DAYS,
        ge=1,
        description="how long after a scored day its outcomes are counted",
    )

    @classmethod
    def of(cls, config: HeatsyncConfig) -> HeatsyncSettings:
        return cls(
            home=config.home,
            locale=config.locale,
            scoring_config=config.scoring_config,
            dry_run=config.dry_run,
            backtest_horizon_days=config.backtest_horizon_days,
        )

    def values(self) -> HeatsyncConfig:
        return HeatsyncConfig(
            home=self.home,
            locale=self.locale,
            scoring_config=self.scoring_config,
            dry_run=self.dry_run,
            backtest_horizon_days=self.backtest_horizon_days,
        )

    def store(self, portal: str) -> PortalStore:
        return self.values().store(portal)

    def config(self) -> ScoringConfig:
        return self.values().scoring()
