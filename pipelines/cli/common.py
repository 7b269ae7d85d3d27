"""What the CRM commands share: the project root, `.env`, DAGSTER_HOME and the settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import CrmConnector
    from pipelines.config import HeatsyncConfig
    from pipelines.crms import Crm

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


def connector_from_env(portal: str) -> tuple[Crm, CrmConnector, HeatsyncConfig]:
    """The configured CRM (HEATSYNC_CRM, else the one whose credentials are set), the portal's
    connector and heatsync's settings, from the environment (after .env), through the same
    functions the Dagster definitions use."""
    from pipelines.config import MissingCredentials, heatsync_config
    from pipelines.crms import chosen_crm

    config = heatsync_config(os.environ)
    try:
        crm = chosen_crm(os.environ)
        connector = crm.connector(portal, os.environ, config)
    except MissingCredentials as exc:
        raise SystemExit(
            f"heatsync: {exc} Put them in the environment or in .env (see .env.example)."
        ) from None
    return crm, connector, config
