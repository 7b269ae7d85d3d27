"""What the CRM commands share: the project root, `.env`, DAGSTER_HOME and the settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.hubspot import HubSpotSettings
    from pipelines.config import HeatsyncConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_DAGSTER_YAML = PROJECT_ROOT / "pipelines" / "dagster.yaml"


def load_env() -> None:
    """Read `.env` from the working directory (variables already set win)."""
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)


def ensure_dagster_home() -> Path:
    from pipelines.store import default_home

    home = Path(os.environ.get("DAGSTER_HOME") or default_home() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(SHIPPED_DAGSTER_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def settings_from_env(portal: str) -> tuple[HubSpotSettings, HeatsyncConfig]:
    """The portal's connection settings and heatsync's own, from the environment (after .env),
    through the same functions the Dagster definitions use."""
    from pipelines.config import MissingCredentials, heatsync_config, hubspot_settings

    try:
        hubspot = hubspot_settings(portal, os.environ)
    except MissingCredentials:
        raise SystemExit(
            "heatsync: no HubSpot credentials. Set HUBSPOT_ACCESS_TOKEN (private app or service "
            "key) or the OAuth trio HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and "
            "HUBSPOT_REFRESH_TOKEN, in the environment or in .env (see .env.example)."
        ) from None
    return hubspot, heatsync_config(os.environ)
