"""Dagster resources: the portals' CRM connections (secrets only through EnvVar) and heatsync's
settings.

`CrmResource` is CRM-neutral. Its own fields are the connection of the environment's portal
(`crm` names a CRM of the registry, pipelines.crms; the other fields hold its connection by role
under the variables that CRM reads), which answers to any portal name; `portals` instead holds
one `CrmConnection` per portal of a portals file, and then only those names exist.
`HeatsyncSettings` holds heatsync's settings and, per portal of a portals file, what that portal
sets itself. Both hand their values to pipelines.portals, the one path to a portal's connector
and settings that the `heatsync` command line uses too; an empty field means "not set".
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from connectors.base import CrmConnector
from pipelines.config import DEFAULT_BACKTEST_HORIZON_DAYS, HeatsyncConfig, MissingCredentials
from pipelines.crms import CRMS, DEFAULT_CRM, ROLES, Crm
from pipelines.human_edits import DEFAULT_HUMAN_EDIT_DAYS
from pipelines.portals import Portal, PortalsFileError
from pipelines.store import PortalStore
from scoring import ScoringConfig


class CrmConnection(dg.Config):
    """One portal's CRM (`crm`, a name in pipelines.crms.CRMS) and its connection, by role."""

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
    named: dict[str, str] = Field(
        default_factory=dict,
        description="role -> the environment variable a portals file names for it",
    )

    def spec(self) -> Crm:
        if self.crm not in CRMS:
            raise dg.Failure(f"unknown CRM {self.crm!r}: {', '.join(CRMS)}", allow_retries=False)
        return CRMS[self.crm]

    def environment(self) -> dict[str, str]:
        """The connection's values under the environment variables they stand for."""
        spec = self.spec()
        values = {name: str(getattr(self, role)) for role, name in spec.variables.items()}
        return {**values, **{k: v for k, v in self.options.items() if k in spec.options}}


assert set(ROLES) <= set(CrmConnection.model_fields), "a role without a resource field"


class CrmResource(dg.ConfigurableResource, CrmConnection):
    """The CRM connection of every portal: the environment's (these fields, any portal name) or
    a portals file's (`portals`, by name)."""

    portals: dict[str, CrmConnection] = Field(
        default_factory=dict, description="the portals of a portals file, by name"
    )

    def names(self) -> list[str]:
        """The configured portals' names; empty when the environment's portal takes any."""
        return list(self.portals)

    def connection(self, portal: str) -> CrmConnection:
        if not self.portals:
            return self
        if portal not in self.portals:
            known = ", ".join(self.portals)
            raise dg.Failure(
                f"portal {portal!r} is not in the portals file ({known})", allow_retries=False
            )
        return self.portals[portal]

    def connector(self, portal: str, config: HeatsyncConfig | None = None) -> CrmConnector:
        """The portal's connector, with its settings (`HeatsyncSettings.values(portal)`): the
        store's home (amoCRM keeps its tokens there) and its time zone."""
        connection = self.connection(portal)
        unset = [name for role, name in connection.named.items() if not getattr(connection, role)]
        if unset:
            raise dg.Failure(
                f"portal {portal}: {', '.join(unset)} not set (named in the portals file; set "
                "it and reload the code location)",
                allow_retries=False,
            )
        try:
            return Portal(portal, connection.spec()).connector(
                connection.environment(), config or HeatsyncConfig()
            )
        except (MissingCredentials, PortalsFileError) as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None


class PortalSettings(dg.Config):
    """What one portal of a portals file sets for itself (empty: heatsync's setting)."""

    locale: str = ""
    time_zone: str = ""
    daily_task_cap: int = Field(default=-1, description="tasks per owner and day; -1: the config's")
    scoring_config: str = ""
    field_policy: dict[str, str] = Field(default_factory=dict)
    human_edit_days: int = DEFAULT_HUMAN_EDIT_DAYS


class HeatsyncSettings(dg.ConfigurableResource):
    """Where the local store lives, the reps' language, the scoring config, dry-run mode, the
    backtest horizon; and per portal of a portals file, what it sets itself."""

    home: str = ""
    locale: str = ""
    scoring_config: str = ""
    dry_run: bool = False
    backtest_horizon_days: int = Field(
        default=DEFAULT_BACKTEST_HORIZON_DAYS,
        ge=1,
        description="how long after a scored day its outcomes are counted",
    )
    field_policy: dict[str, str] = Field(
        default_factory=dict,
        description="heatsync field -> overwrite | respect_human_edits | never_write",
    )
    human_edit_days: int = Field(
        default=DEFAULT_HUMAN_EDIT_DAYS, ge=0, description="how long a person's value stands"
    )
    portals: dict[str, PortalSettings] = Field(default_factory=dict)

    @classmethod
    def of(
        cls, config: HeatsyncConfig, portals: dict[str, HeatsyncConfig] | None = None
    ) -> HeatsyncSettings:
        """From heatsync's settings and, per portal, the settings that portal resolves to."""
        return cls(
            home=config.home,
            locale=config.locale,
            scoring_config=config.scoring_config,
            dry_run=config.dry_run,
            backtest_horizon_days=config.backtest_horizon_days,
            field_policy=dict(config.field_policy),
            human_edit_days=config.human_edit_days,
            portals={
                name: PortalSettings(
                    locale=own.locale,
                    time_zone=own.time_zone,
                    daily_task_cap=-1 if own.daily_task_cap is None else own.daily_task_cap,
                    scoring_config=own.scoring_config,
                    field_policy=dict(own.field_policy),
                    human_edit_days=own.human_edit_days,
                )
                for name, own in (portals or {}).items()
            },
        )

    def values(self, portal: str | None = None) -> HeatsyncConfig:
        """heatsync's settings, as `portal` sees them when given (its own locale, time zone, task
        cap and scoring config over heatsync's). The reps' language is never empty: English
        unless configured."""
        base = HeatsyncConfig(
            home=self.home,
            locale=self.locale or "en",
            scoring_config=self.scoring_config,
            dry_run=self.dry_run,
            backtest_horizon_days=self.backtest_horizon_days,
            field_policy=dict(self.field_policy),
            human_edit_days=self.human_edit_days,
        )
        own = self.portals.get(portal or "")
        if own is None:
            return base
        return HeatsyncConfig(
            home=base.home,
            locale=own.locale or base.locale,
            scoring_config=own.scoring_config or base.scoring_config,
            dry_run=base.dry_run,
            backtest_horizon_days=base.backtest_horizon_days,
            time_zone=own.time_zone,
            daily_task_cap=None if own.daily_task_cap < 0 else own.daily_task_cap,
            field_policy={**base.field_policy, **own.field_policy},
            human_edit_days=own.human_edit_days,
        )

    def store(self, portal: str) -> PortalStore:
        return self.values(portal).store(portal)

    def config(self, portal: str | None = None) -> ScoringConfig:
        return self.values(portal).scoring()
