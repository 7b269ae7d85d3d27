"""Dagster resources: the CRM connection (secrets only through EnvVar) and heatsync's settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from pipelines.store import PortalStore, default_home
from scoring import ScoringConfig, load_config

HUBSPOT_DEFAULT_BASE_URL = "https://api.hubapi.com"


class HubSpotResource(dg.ConfigurableResource):
    """One HubSpot portal: a private-app / service-key token, or an OAuth refresh token."""

    access_token: str = ""
    base_url: str = HUBSPOT_DEFAULT_BASE_URL
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    burst_limit: int = Field(default=190, description="requests per 10 s this app may use")

    def connector(self, portal: str) -> HubSpotConnector:
        if not self.access_token and not self.refresh_token:
            raise dg.Failure(
                "No HubSpot credentials: set HUBSPOT_ACCESS_TOKEN (private app or service key) "
                "or HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN (OAuth)."
            )
        settings = HubSpotSettings(
            access_token=self.access_token or None,
            base_url=self.base_url or HUBSPOT_DEFAULT_BASE_URL,
            client_id=self.client_id or None,
            client_secret=self.client_secret or None,
            refresh_token=self.refresh_token or None,
            burst_limit=self.burst_limit,
            portal=portal,
        )
        return HubSpotConnector(settings)


class HeatsyncSettings(dg.ConfigurableResource):
    """Where the local store lives, the reps' language, the scoring config, and dry-run mode."""

    home: str = ""
    locale: str = "en"
    scoring_config: str = ""
    dry_run: bool = False
    backtest_horizon_days: int = Field(
        default=30, ge=1, description="how long after a scored day its outcomes are counted"
    )

    def store(self, portal: str) -> PortalStore:
        return PortalStore(Path(self.home) if self.home else default_home(), portal)

    def config(self) -> ScoringConfig:
        return load_config(self.scoring_config or None)
