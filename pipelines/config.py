"""heatsync's own settings from environment variables (HEATSYNC_*), for Dagster and the CLI alike.

`heatsync_config(env)` is the one place they are read: the `heatsync` command line passes the
process environment (after `.env`), the Dagster definitions the environment they are built in. A
portal may override some of them (pipelines.portals: a portals file's locale, time zone, task cap
and scoring config). A CRM's connection is read by its connector package
(`connectors/<crm>/env.py`). An empty variable counts as unset, and an unset one takes the
default written here. Nothing is read at import time, and nothing here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.spec import MissingCredentials as MissingCredentials  # re-exported
from pipelines.human_edits import DEFAULT_HUMAN_EDIT_DAYS, parse_policy
from pipelines.store import PortalStore, default_home
from scoring import ScoringConfig, load_config

# HeatsyncConfig field -> environment variable
HEATSYNC_VARIABLES = {
    "home": "HEATSYNC_HOME",
    "locale": "HEATSYNC_LOCALE",
    "scoring_config": "HEATSYNC_SCORING_CONFIG",
    "dry_run": "HEATSYNC_DRY_RUN",
    "backtest_horizon_days": "HEATSYNC_BACKTEST_HORIZON_DAYS",
    "field_policy": "HEATSYNC_FIELD_POLICY",
    "human_edit_days": "HEATSYNC_HUMAN_EDIT_DAYS",
}
TRUE_WORDS = ("1", "true", "yes")


class SettingsError(MissingCredentials):
    """A HEATSYNC_* setting (or a portal's) is not valid; the message says which and why."""


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


DEFAULT_LOCALE = "en"
DEFAULT_BACKTEST_HORIZON_DAYS = 30


@dataclass(frozen=True)
class HeatsyncConfig:
    """heatsync's own settings: where the stores live, the reps' language, the scoring config,
    dry-run mode, the backtest horizon and how heatsync's fields treat a person's edits (per
    field write policy, and how long a person's value stands); and what a portal may override
    besides: its time zone (empty: the CRM account's) and the daily task cap per owner (None:
    the scoring config's). An empty `locale` stands for the CRM's default (pipelines.portals
    resolves it)."""

    home: str = ""
    locale: str = ""
    scoring_config: str = ""
    dry_run: bool = False
    backtest_horizon_days: int = DEFAULT_BACKTEST_HORIZON_DAYS
    time_zone: str = ""
    daily_task_cap: int | None = None
    # field -> overwrite | respect_human_edits | never_write (pipelines.human_edits: defaults)
    field_policy: Mapping[str, str] = field(default_factory=dict)
    human_edit_days: int = DEFAULT_HUMAN_EDIT_DAYS

    def home_dir(self) -> Path:
        """Where heatsync keeps its stores (and amoCRM its tokens)."""
        return Path(self.home).expanduser().resolve() if self.home else default_home()

    def store(self, portal: str) -> PortalStore:
        return PortalStore(self.home_dir(), portal)

    def scoring(self) -> ScoringConfig:
        return self.capped(load_config(self.scoring_config or None))

    def capped(self, config: ScoringConfig) -> ScoringConfig:
        """`config` with this portal's daily task cap, when it sets one."""
        if self.daily_task_cap is None:
            return config
        tasks = config.tasks.model_copy(update={"daily_cap": self.daily_task_cap})
        return config.model_copy(update={"tasks": tasks})


def heatsync_config(env: Mapping[str, str]) -> HeatsyncConfig:
    """heatsync's settings from environment variables (HEATSYNC_*)."""
    horizon = _value(env, HEATSYNC_VARIABLES["backtest_horizon_days"])
    dry_run = (_value(env, HEATSYNC_VARIABLES["dry_run"]) or "").lower() in TRUE_WORDS
    edit_days = _value(env, HEATSYNC_VARIABLES["human_edit_days"])
    policy = _value(env, HEATSYNC_VARIABLES["field_policy"]) or ""
    try:
        field_policy = parse_policy(policy)
    except ValueError as exc:
        raise SettingsError(f"{HEATSYNC_VARIABLES['field_policy']}: {exc}") from None
    return HeatsyncConfig(
        field_policy=field_policy,
        human_edit_days=int(edit_days) if edit_days else DEFAULT_HUMAN_EDIT_DAYS,
        home=_value(env, HEATSYNC_VARIABLES["home"]) or "",
        locale=_value(env, HEATSYNC_VARIABLES["locale"]) or "",
        scoring_config=_value(env, HEATSYNC_VARIABLES["scoring_config"]) or "",
        dry_run=dry_run,
        backtest_horizon_days=int(horizon) if horizon else DEFAULT_BACKTEST_HORIZON_DAYS,
    )
