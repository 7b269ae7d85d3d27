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
from dataclasses import dataclass
from pathlib import Path

from connectors.spec import MissingCredentials as MissingCredentials  # re-exported
from pipelines.store import PortalStore, default_home
from scoring import ScoringConfig, load_config

# HeatsyncConfig field -> environment variable
HEATSYNC_VARIABLES = {
    "home": "HEATSYNC_HOME",
    "locale": "HEATSYNC_LOCALE",
    "scoring_config": "HEATSYNC_SCORING_CONFIG",
    "dry_run": "HEATSYNC_DRY_RUN",
    "backtest_horizon_days": "HEATSYNC_BACKTEST_HORIZON_DAYS",
}
TRUE_WORDS = ("1", "true", "yes")


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


DEFAULT_LOCALE = "en"
DEFAULT_BACKTEST_HORIZON_DAYS = 30


@dataclass(frozen=True)
class HeatsyncConfig:
    """heatsync's own settings: where the stores live, the reps' language, the scoring config,
    dry-run mode and the backtest horizon; and what a portal may override besides: its time
    zone (empty: the CRM account's) and the daily task cap per owner (None: the scoring
    config's). An empty `locale` stands for the CRM's default (pipelines.portals resolves it)."""

    home: str = ""
    locale: str = ""
    scoring_config: str = ""
    dry_run: bool = False
    backtest_horizon_days: int = DEFAULT_BACKTEST_HORIZON_DAYS
    time_zone: str = ""
    daily_task_cap: int | None = None

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
    return HeatsyncConfig(
        home=_value(env, HEATSYNC_VARIABLES["home"]) or "",
        locale=_value(env, HEATSYNC_VARIABLES["locale"]) or "",
        scoring_config=_value(env, HEATSYNC_VARIABLES["scoring_config"]) or "",
        dry_run=dry_run,
        backtest_horizon_days=int(horizon) if horizon else DEFAULT_BACKTEST_HORIZON_DAYS,
    )
