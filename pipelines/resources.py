"""Dagster resources: the CRM connection (secrets only through EnvVar) and heatsync's settings.

`CrmResource` is CRM-neutral: `crm` names a CRM of the registry (pipelines.crms) and the fields
hold its connection by role (base URL, tokens, client id and secret, redirect URI), under the
environment variables that CRM reads. Both hand their values to pipelines.config / pipelines.crms,
the one path to typed settings that the `heatsync` command line uses too; an empty field means
"not set" and takes the default written there.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from connectors.base import CrmConnector
from pipelines.config import (
    DEFAULT_BACKTEST_HORIZON_DAYS,
    DEFAULT_LOCALE,
    HeatsyncConfig,
    MissingCredentials,
)
from pipelines.crms import CRMS, DEFAULT_CRM, ROLES, Crm
from pipelines.store import PortalStore
from scoring import ScoringConfig


class CrmResource(dg.ConfigurableResource):
    """One CRM portal: which CRM (`crm`, a name in pipelines.crms.CRMS) and its connection."""

    crm: str = Field(default=DEFAULT_CRM, description="the CRM: " + ", ".join(CRMS))
    base_url: str = Field(default="", description="the CRM's API root (empty: its default)")
    access_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    redirect_uri: str = ""
    refresh_token: str = ""
    auth_code: str = ""
    options: dict[str, str] = Field(
        default_factory=dict,
        description="the CRM's other settings by environment variable, e.g. HUBSPOT_BURST_LIMIT",
    )

    def spec(self) -> Crm:
        if self.crm not in CRMS:
            raise dg.Failure(f"unknown CRM {self.crm!r}: {', '.join(CRMS)}", allow_retries=False)
        return CRMS[self.crm]

    def environment(self) -> dict[str, str]:
        """The resource's values under the environment variables they stand for."""
        spec = self.spec()
        values = {name: str(getattr(self, role)) for role, name in spec.variables.items()}
        return {**values, **{k: v for k, v in self.options.items() if k in spec.options}}

    def connector(self, portal: str, config: HeatsyncConfig | None = None) -> CrmConnector:
        """The portal's connector; heatsync's settings place what the CRM keeps locally (the
        amoCRM token store under its home)."""
        try:
            return self.spec().connector(portal, self.environment(), config or HeatsyncConfig())
        except MissingCredentials as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None


assert set(ROLES) <= set(CrmResource.model_fields), "a role without a resource field"


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
