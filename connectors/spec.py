"""What the pipeline needs to know of a CRM to run it: one `CrmSpec` per connector package.

A CRM's connection is configured by environment variables, named per *role* (`ROLES`: the API
root, the tokens, the OAuth app's id, secret and redirect URI, a one-time authorization code); a
spec maps each role it reads to its variable, lists its other settings (`options`), says what to
set when nothing is (`needs`) and which language its reps read by default (`locale`). `build`
makes a portal's connector from such an environment; `state_dir` is where the CRM may keep what
must outlive a run (amoCRM's rotating refresh tokens). Nothing here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import CrmConnector

ROLES = (
    "base_url",
    "access_token",
    "client_id",
    "client_secret",
    "redirect_uri",
    "refresh_token",
    "auth_code",
)
# Roles that hold credentials: configured only through environment variables, never in a file.
SECRET_ROLES = ("access_token", "client_id", "client_secret", "refresh_token", "auth_code")


class MissingCredentials(ValueError):
    """A portal's connection is not configured well enough to reach its CRM; says what to set."""


Build = Callable[[str, Mapping[str, str], Path], "CrmConnector"]


@dataclass(frozen=True)
class CrmSpec:
    """One CRM: how its connector is built and which environment variables configure it."""

    name: str  # as in HEATSYNC_CRM and a portals file, the Dagster kind, the store's account keys
    build: Build  # (portal, environment, state_dir) -> connector; MissingCredentials if it can't
    variables: Mapping[str, str]  # role (ROLES) -> environment variable
    options: tuple[str, ...] = ()  # further environment variables it reads (never secrets)
    needs: str = ""  # what to set, for the error when nothing is configured
    locale: str = "en"  # the reps' language unless configured otherwise

    def __post_init__(self) -> None:
        unknown = set(self.variables) - set(ROLES)
        if unknown:
            raise ValueError(f"{self.name}: unknown roles {sorted(unknown)}; roles are {ROLES}")

    @property
    def secret_roles(self) -> tuple[str, ...]:
        return tuple(role for role in SECRET_ROLES if role in self.variables)

    def configured(self, env: Mapping[str, str]) -> bool:
        """Whether any of its credentials is set in `env`."""
        return any((env.get(self.variables[role]) or "").strip() for role in self.secret_roles)

    def connector(self, portal: str, env: Mapping[str, str], state_dir: Path) -> CrmConnector:
        """The portal's connector; MissingCredentials (a ValueError) naming what is missing."""
        return self.build(portal, env, state_dir)
