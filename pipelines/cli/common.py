"""What the CRM commands share: the project root, `.env`, DAGSTER_HOME, the portals and their
settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from connectors.base import CrmConnector
    from pipelines.config import HeatsyncConfig
    from pipelines.portals import Portal
    from pipelines.store import PortalStore

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


class PortalSetup(NamedTuple):
    """One portal as the CLI runs it: the portal, its connector and its settings."""

    portal: Portal
    connector: CrmConnector
    config: HeatsyncConfig


def selected_portals(name: str | None) -> list[Portal]:
    """The portal `name`, or every configured portal (the portals file's, else the
    environment's `default`), from the environment after .env; SystemExit saying what to fix."""
    from pipelines.crms import NoCrmConfigured
    from pipelines.portals import PortalsFileError, portals_named

    try:
        return portals_named(name, os.environ)
    except (PortalsFileError, NoCrmConfigured) as exc:
        raise SystemExit(f"heatsync: {exc}" + _WHERE * isinstance(exc, NoCrmConfigured)) from None


_WHERE = " Put them in the environment or in .env (see .env.example)."


def setup(portal: Portal) -> PortalSetup:
    """The portal's connector and settings, through the same functions the Dagster definitions
    use; MissingCredentials (a ValueError) saying what to set."""
    from pipelines.config import heatsync_config

    config = portal.config(heatsync_config(os.environ))
    return PortalSetup(portal, portal.connector(os.environ, config), config)


def label(portal: Portal) -> str:
    """ "portal NAME: " before a portal's error when a portals file lists several; nothing for
    the environment's single portal."""
    return "" if portal.entry is None else f"portal {portal.name}: "


def unconfigured(exc: Exception, portal: Portal) -> str:
    """The line for a portal whose credentials are not set: where to set them."""
    return f"{exc}{_WHERE if portal.entry is None else ''}"


class StoreNotFound(Exception):
    """An unknown portal, or no local store for it: one line, exit status 2."""


def portal_stores(name: str | None) -> list[PortalStore]:
    """The stores of portal `name`, or of every configured portal; no credentials needed."""
    from pipelines.config import heatsync_config
    from pipelines.crms import NoCrmConfigured
    from pipelines.portals import DEFAULT_PORTAL, PortalsFileError, portals_named

    load_env()
    base = heatsync_config(os.environ)
    try:
        portals = portals_named(name, os.environ)
    except PortalsFileError as exc:
        raise StoreNotFound(str(exc)) from None
    except NoCrmConfigured:  # the store is still there to read
        return existing_stores([base.store(name or DEFAULT_PORTAL)])
    return existing_stores([p.config(base).store(p.name) for p in portals])


def existing_stores(stores: list[PortalStore]) -> list[PortalStore]:
    """The stores that exist, once each (two names bound to one account share one)."""
    roots = {s.root: s for s in reversed(stores) if s.root.is_dir()}
    there = [s for s in stores if roots.get(s.root) is s]
    if not there:
        names = ", ".join(s.portal for s in stores)
        raise StoreNotFound(f"no store for portal {names} under {stores[0].home}")
    return there
