"""The portals one deployment serves: a portals file, or the one portal the environment configures.

The portals file (YAML, validated here) is named by HEATSYNC_PORTALS or, unset, is `portals.yaml`
beside workspace.yaml when that exists. It lists portals of any registered CRM (pipelines.crms):
name, CRM, API root, the *names* of the environment variables that hold its credentials (never
the credentials), and what a portal may set for itself: time zone, the reps' language, the daily
task cap per owner, a scoring config. `portals.example.yaml` documents every key.

Without a file, the environment configures a single portal (HEATSYNC_CRM, HUBSPOT_* or AMOCRM_*)
that answers to any name (`default` unless `--portal` says otherwise), as heatsync always did.

Each portal has its own connector, so its own rate limiter and (amoCRM) token chain, and its own
store under heatsync's home. Nothing here imports Dagster: the definitions and the CLI both build
their portals from `configured_portals`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.base import WRITABLE_FIELDS
from connectors.spec import MissingCredentials
from pipelines.config import HeatsyncConfig
from pipelines.crms import CRMS, Crm, chosen_crm, crm_for_definitions, crm_named
from scoring import load_config

if TYPE_CHECKING:
    from connectors.base import CrmConnector, PortalInfo

PORTALS_VARIABLE = "HEATSYNC_PORTALS"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PORTALS_FILE = PROJECT_ROOT / "portals.yaml"
DEFAULT_PORTAL = "default"  # the name of the environment's portal unless one is given
LOCALES = tuple(sorted(p.stem for p in (PROJECT_ROOT / "scoring" / "locales").glob("*.yaml")))
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PortalsFileError(ValueError):
    """The portals file is missing, not YAML, or not valid; the message says where and why."""


class PortalEntry(BaseModel):
    """One portal of a portals file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the portal's name: its partition, its store, `--portal NAME`")
    crm: str = Field(description="the CRM: " + ", ".join(CRMS))
    base_url: str = Field("", description="the CRM's API root (empty: the CRM's default)")
    redirect_uri: str = Field("", description="the OAuth app's redirect URI, where it has one")
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="role (access_token, client_id, client_secret, refresh_token, auth_code) -> "
        "the NAME of the environment variable holding it",
    )
    options: dict[str, str | int | float] = Field(
        default_factory=dict, description="the CRM's other settings under their variable names"
    )
    time_zone: str = Field("", description="IANA time zone (empty: the CRM account's)")
    locale: str = Field("", description="the reps' language (empty: HEATSYNC_LOCALE or the CRM's)")
    daily_task_cap: int | None = Field(None, ge=0, description="tasks per owner and day")
    scoring_config: str = Field("", description="a scoring config YAML (relative to this file)")
    field_policy: dict[str, Literal["overwrite", "respect_human_edits", "never_write"]] = Field(
        default_factory=dict, description="heatsync field -> how a person's edit is treated"
    )
    human_edit_days: int | None = Field(None, ge=0, description="how long a person's value stands")

    @field_validator("field_policy")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(WRITABLE_FIELDS))
        if unknown:
            raise ValueError(f"{unknown}: heatsync's fields are {', '.join(WRITABLE_FIELDS)}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(
                "a portal name is lowercase letters, digits, '-' and '_' (at most 63), "
                f"starting with a letter or digit; got {value!r}"
            )
        return value

    @field_validator("crm")
    @classmethod
    def _crm(cls, value: str) -> str:
        return crm_named(value).name

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone, e.g. Europe/Riga") from None
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if value and value not in LOCALES:
            raise ValueError(f"{value!r} is not a language heatsync speaks: {', '.join(LOCALES)}")
        return value

    @model_validator(mode="after")
    def _fits_the_crm(self) -> PortalEntry:
        crm = CRMS[self.crm]
        for role, variable in self.credentials.items():
            if role not in crm.secret_roles:
                raise ValueError(
                    f"credentials.{role}: {crm.name} takes {', '.join(crm.secret_roles)}"
                )
            if not VARIABLE.fullmatch(variable):
                raise ValueError(
                    f"credentials.{role}: give the name of the environment variable that holds "
                    "it (letters, digits, '_'), never the secret itself"
                )
        if not self.credentials:
            raise ValueError(
                f"credentials: name the environment variables of the portal's {crm.name} "
                f"credentials ({', '.join(crm.secret_roles)})"
            )
        if self.redirect_uri and "redirect_uri" not in crm.variables:
            raise ValueError(f"redirect_uri: {crm.name} has none")
        unknown = sorted(set(self.options) - set(crm.options))
        if unknown:
            known = ", ".join(crm.options) or "none"
            raise ValueError(f"options {unknown}: {crm.name} reads {known}")
        return self


class PortalsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portals: list[PortalEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PortalsFile:
        names = [p.name for p in self.portals]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"portal names must be unique: {', '.join(twice)} twice")
        return self


def _where(loc: tuple[Any, ...], data: Any) -> str:
    """`portals[1] (acme).credentials` for pydantic's location (portals, 1, credentials)."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
            try:
                name = data["portals"][part].get("name")
            except (AttributeError, IndexError, KeyError, TypeError):
                name = None
            if name and i == 1:
                parts[-1] += f" ({name})"
        else:
            parts.append(str(part))
    return ".".join(parts) or "file"


def load_portals_file(path: Path) -> list[PortalEntry]:
    """The portals of the file at `path`; PortalsFileError naming every problem and where.

    A relative `scoring_config` is taken relative to the file and must be a valid config."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PortalsFileError(f"portals file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise PortalsFileError(f"portals file {path}: not YAML: {exc}") from None
    try:
        entries = PortalsFile.model_validate(data).portals
    except ValidationError as exc:
        problems = [
            f"{_where(tuple(e['loc']), data)}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise PortalsFileError(f"portals file {path}:\n  " + "\n  ".join(problems)) from None
    resolved = []
    for entry in entries:
        if entry.scoring_config:
            config = Path(entry.scoring_config).expanduser()
            config = config if config.is_absolute() else (path.parent / config)
            try:
                load_config(config)
            except (OSError, ValueError) as exc:
                raise PortalsFileError(
                    f"portals file {path}: portal {entry.name}: scoring_config {config}: {exc}"
                ) from None
            entry = entry.model_copy(update={"scoring_config": str(config.resolve())})
        resolved.append(entry)
    return resolved


def portals_file(env: Mapping[str, str]) -> Path | None:
    """The portals file in use: HEATSYNC_PORTALS (which must exist), else `portals.yaml` beside
    workspace.yaml when there is one, else None (the environment configures one portal)."""
    named = (env.get(PORTALS_VARIABLE) or "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise PortalsFileError(f"{PORTALS_VARIABLE}={named}: no such file")
        return path.resolve()
    return DEFAULT_PORTALS_FILE if DEFAULT_PORTALS_FILE.is_file() else None


@dataclass(frozen=True)
class Portal:
    """One portal: its name, its CRM, where its connection comes from and what it sets itself.

    `entry` is its portals-file entry; None for the environment's portal, whose connection is
    the CRM's own variables (HUBSPOT_*, AMOCRM_*) and whose settings are HEATSYNC_*'s."""

    name: str
    crm: Crm
    entry: PortalEntry | None = None
    source: str = "the environment"

    def variables(self) -> dict[str, str]:
        """role -> the environment variable that holds it."""
        if self.entry is None:
            return dict(self.crm.variables)
        return dict(self.entry.credentials)

    def values(self) -> dict[str, str]:
        """role -> a value written in the portals file (the API root, the redirect URI)."""
        if self.entry is None:
            return {}
        given = {"base_url": self.entry.base_url, "redirect_uri": self.entry.redirect_uri}
        return {role: value for role, value in given.items() if value}

    def options(self, env: Mapping[str, str]) -> dict[str, str]:
        """The CRM's other settings, by their variable names."""
        if self.entry is None:
            return {n: env[n].strip() for n in self.crm.options if (env.get(n) or "").strip()}
        return {name: str(value) for name, value in self.entry.options.items()}

    def unset(self, env: Mapping[str, str]) -> list[str]:
        """The variables the portals file names for this portal that are not set."""
        if self.entry is None:
            return []
        return [v for v in self.entry.credentials.values() if not (env.get(v) or "").strip()]

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The portal's connection under the CRM's own variable names, as its connector reads."""
        out = {}
        for role, variable in self.variables().items():
            value = (env.get(variable) or "").strip()
            if value:
                out[self.crm.variables[role]] = value
        for role, value in self.values().items():
            out[self.crm.variables[role]] = value
        return {**out, **self.options(env)}

    def config(self, base: HeatsyncConfig) -> HeatsyncConfig:
        """heatsync's settings for this portal: `base` (HEATSYNC_*) with what the portal sets,
        and the CRM's language when neither names one."""
        entry = self.entry
        if entry is None:
            return replace(base, locale=base.locale or self.crm.locale)
        return replace(
            base,
            locale=entry.locale or base.locale or self.crm.locale,
            time_zone=entry.time_zone or base.time_zone,
            daily_task_cap=(
                entry.daily_task_cap if entry.daily_task_cap is not None else base.daily_task_cap
            ),
            scoring_config=entry.scoring_config or base.scoring_config,
            field_policy={**base.field_policy, **entry.field_policy},
            human_edit_days=(
                entry.human_edit_days if entry.human_edit_days is not None else base.human_edit_days
            ),
        )

    def connector(self, env: Mapping[str, str], config: HeatsyncConfig) -> CrmConnector:
        """The portal's connector (`config` as `self.config` made it); MissingCredentials
        naming what is not set."""
        unset = self.unset(env)
        if unset:
            raise MissingCredentials(
                f"portal {self.name}: {', '.join(unset)} not set (named in {self.source})"
            )
        connector = self.crm.connector(self.name, self.environment(env), config.home_dir())
        return in_time_zone(connector, config.time_zone)


def configured_portals(env: Mapping[str, str]) -> list[Portal]:
    """The portals of the portals file, or the environment's single portal (`default`).
    PortalsFileError for a bad file; NoCrmConfigured when neither configures a CRM."""
    path = portals_file(env)
    if path is None:
        return [Portal(DEFAULT_PORTAL, chosen_crm(env))]
    return [Portal(e.name, CRMS[e.crm], e, str(path)) for e in load_portals_file(path)]


def portals_for_definitions(env: Mapping[str, str]) -> list[Portal]:
    """As `configured_portals`, but without a file and without credentials still the
    environment's portal (of HEATSYNC_CRM or the default CRM): the UI loads, and a run fails
    saying what to set."""
    if portals_file(env) is None:
        return [Portal(DEFAULT_PORTAL, crm_for_definitions(env))]
    return configured_portals(env)


def portals_named(name: str | None, env: Mapping[str, str]) -> list[Portal]:
    """The portal `name`, or every configured portal when `name` is None. Without a portals
    file any name is the environment's portal under that name; with one, an unknown name is a
    PortalsFileError listing the known ones."""
    portals = configured_portals(env)
    if name is None:
        return portals
    if portals[0].entry is None:
        return [replace(portals[0], name=name)]
    found = [p for p in portals if p.name == name]
    if not found:
        known = ", ".join(p.name for p in portals)
        raise PortalsFileError(f"no portal {name!r} in {portals[0].source}: {known}")
    return found


class _InTimeZone:
    """A connector whose portal keeps its calendar in `time_zone` instead of the account's: the
    day partitions, the as-of and the tasks' due times follow it. The connector itself still
    reads the CRM's dates in the account's zone."""

    def __init__(self, inner: CrmConnector, time_zone: str) -> None:
        self._inner = inner
        self._time_zone = time_zone

    def portal_info(self) -> PortalInfo:
        return replace(self._inner.portal_info(), time_zone=self._time_zone)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def in_time_zone(connector: CrmConnector, time_zone: str) -> CrmConnector:
    """`connector`, its portal's calendar in `time_zone` when one is given."""
    return cast("CrmConnector", _InTimeZone(connector, time_zone)) if time_zone else connector
