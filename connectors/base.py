"""What every CRM connector offers the pipelines: extract to canonical tables, write back, report.

A connector never imports Dagster and never scores. It turns its API's payloads into the tables of
`scoring.contract`, quarantines what it cannot map, and writes heatsync's fields and tasks back,
reporting per row what happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from connectors.sink import TableSink

# Canonical heatsync fields a connector writes on each contact, in scoring's names. Each
# connector maps them to its own property names and formats.
WRITABLE_FIELDS = (
    "temperature",
    "score",
    "segment",
    "reasons",
    "trend",
    "next_touch_due",
    "touches_30d",
)

# The fields whose empty value is a real statement of the methodology: a contact that fits no
# segment any more, has no reason to show, or is never to be touched. The others are empty only
# when heatsync does not know (no earlier score to compare with, for the trend): an empty value
# never overwrites what the CRM holds for them.
CLEARABLE_FIELDS = ("segment", "reasons", "next_touch_due")

QUARANTINE_COLUMNS = ("portal", "object_type", "object_id", "reason", "payload")
# `CrmConnector.field_edits`: one row per (contact, canonical field) someone else changed.
FIELD_EDIT_COLUMNS = ("contact_id", "field", "value", "changed_at", "source", "by")
OWN_TASK_COLUMNS = ("task_key", "task_id", "created_at")


def empty_edits() -> pd.DataFrame:
    """An empty `CrmConnector.field_edits` answer (FIELD_EDIT_COLUMNS, changed_at in UTC)."""
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in FIELD_EDIT_COLUMNS})
    frame["changed_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def edits_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A `field_edits` answer from row dicts, sorted by contact and field."""
    if not rows:
        return empty_edits()
    frame = pd.DataFrame(rows, columns=list(FIELD_EDIT_COLUMNS))
    frame["changed_at"] = pd.to_datetime(frame["changed_at"], utc=True)
    return frame.sort_values(["contact_id", "field"], ignore_index=True)


def empty_own_tasks() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task_key": pd.Series(dtype="object"),
            "task_id": pd.Series(dtype="object"),
            "created_at": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )


@dataclass
class RequestStats:
    """Counters of one client's HTTP traffic, for run metadata."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0  # HTTP 429 answers received
    server_errors: int = 0  # 5xx answers and dropped connections
    write_requests: int = 0  # requests that change CRM state

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class PortalInfo:
    portal_id: str
    time_zone: str  # IANA name, e.g. "Europe/Riga"
    currency: str | None = None


class ExtractResult:
    """Canonical tables for the records changed since the cursors, plus bookkeeping.

    `contacts`, `activities` and `deals` follow `scoring.contract` (conformed). A connector may
    give each as a frame or as a `TableSink` it streamed its rows into; `tables` holds what it
    gave (the extract step merges sinks chunk by chunk), the attributes read a sink back as a
    frame (once, on first use). `removed_contact_ids` are contacts that must no longer be scored
    or written (archived, merged away). `cursors` are the new per-object high-water marks to pass
    to the next extract. `quarantine` has the columns QUARANTINE_COLUMNS, one row per record that
    failed validation.
    """

    def __init__(
        self,
        contacts: pd.DataFrame | TableSink,
        activities: pd.DataFrame | TableSink,
        deals: pd.DataFrame | TableSink,
        quarantine: pd.DataFrame,
        removed_contact_ids: list[str],
        cursors: dict[str, str],
        full: bool,  # True when no cursor was given (every record was read)
        # counted non-fatal data problems, e.g. {"birthday_unparsed": 3} (records still emitted)
        warnings: dict[str, int] | None = None,
        # heatsync's own follow-up tasks found in the CRM (OWN_TASK_COLUMNS): the task history
        # that survives a lost local store
        own_tasks: pd.DataFrame | None = None,
    ) -> None:
        self.tables: dict[str, pd.DataFrame | TableSink] = {
            "contacts": contacts,
            "activities": activities,
            "deals": deals,
        }
        self.quarantine = quarantine
        self.removed_contact_ids = removed_contact_ids
        self.cursors = cursors
        self.full = full
        self.warnings = dict(warnings or {})
        self.own_tasks = empty_own_tasks() if own_tasks is None else own_tasks

    def frame(self, name: str) -> pd.DataFrame:
        """One table as a frame (a sink is read back once and kept as its frame)."""
        table = self.tables[name]
        if isinstance(table, TableSink):
            table = self.tables[name] = table.frame()
        return table

    def count(self, name: str) -> int:
        """The rows of one table, without reading a sink back whole."""
        table = self.tables[name]
        return table.count() if isinstance(table, TableSink) else len(table)

    @property
    def contacts(self) -> pd.DataFrame:
        return self.frame("contacts")

    @property
    def activities(self) -> pd.DataFrame:
        return self.frame("activities")

    @property
    def deals(self) -> pd.DataFrame:
        return self.frame("deals")


@dataclass
class WriteReport:
    """Outcome of a field write-back: counts plus the rows that could not be written."""

    attempted: int = 0  # contacts with at least one changed field
    written: int = 0
    unchanged: int = 0
    fields_changed: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)  # contact_id, reason
    skipped: list[str] = field(default_factory=list)  # ids refused (removed/merged contacts)
    rounds: int = 0  # passes over the pending rows (1 = no row needed another try)
    retried: int = 0  # row retries after transient per-row errors, summed over rounds

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class TaskReport:
    """Outcome of creating tasks; `created` maps task key -> CRM task id."""

    created: dict[str, str] = field(default_factory=dict)
    already_existed: dict[str, str] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)  # task_key, reason

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class CheckItem:
    """One line of a connection check: what was checked, whether it passed, what to do."""

    name: str  # e.g. "base URL", "credentials", "scope crm.objects.deals.read", "time zone"
    ok: bool
    detail: str  # one line a person can act on
    warning: bool = False  # ok but worth saying (e.g. a field heatsync creates on its first run)


@dataclass(frozen=True)
class CheckReport:
    """The outcome of `CrmConnector.check`: the account checked and one item per check, in order."""

    crm: str
    account_id: str | None  # None when the credentials could not be checked
    items: tuple[CheckItem, ...]

    @property
    def ok(self) -> bool:
        """True when every item passed (warnings included)."""
        return all(item.ok for item in self.items)


class CrmConnector(Protocol):
    """The calls the pipelines make on a CRM.

    Implementations: connectors.hubspot.HubSpotConnector, connectors.amocrm.AmoCrmConnector.
    """

    crm: str  # the CRM's short name; with PortalInfo.portal_id it names the account
    stats: RequestStats

    def portal_info(self) -> PortalInfo: ...

    def check(self, locale: str) -> CheckReport:
        """Check the connection, credentials, permissions and heatsync's fields without writing.

        Never raises for an expected failure (unreachable server, refused credentials, missing
        permission): each becomes a failed item. `locale` is the one ensure_schema would use.
        """
        ...

    def ensure_schema(self, locale: str) -> list[str]:
        """Create heatsync's property group and fields if missing; return what was created."""
        ...

    def extract(self, cursors: dict[str, str] | None, until: datetime) -> ExtractResult: ...

    def write_fields(self, updates: pd.DataFrame, skip_ids: Iterable[str] = ()) -> WriteReport:
        """Write changed heatsync fields.

        `updates` has one row per contact with `contact_id` and the WRITABLE_FIELDS that changed
        (others NaN/None); it already excludes unchanged values. Contacts in `skip_ids` (removed
        or merged away) are refused and listed in the report's `skipped`.
        """
        ...

    def find_tasks(self, task_keys: dict[str, str]) -> dict[str, str]:
        """Look up tasks heatsync created earlier; `task_keys` maps key -> contact_id.

        Returns key -> CRM task id for those that exist (used to reconcile after a crash).
        """
        ...

    def create_tasks(self, tasks: pd.DataFrame) -> TaskReport:
        """Create tasks (one row per task, columns of scoring.tasks.TASK_COLUMNS)."""
        ...

    def field_edits(
        self, contact_ids: Sequence[str], fields: Sequence[str], since: datetime
    ) -> pd.DataFrame:
        """The latest change of each (contact, field) at or after `since` made by someone other
        than heatsync and after heatsync's own last write of that field.

        `fields` are canonical names (WRITABLE_FIELDS and "updated_at"). Columns
        FIELD_EDIT_COLUMNS: `contact_id`, `field` (canonical), `value` (text as the CRM shows
        it, heatsync's select options as their canonical codes: cold/warm/hot…; "" when cleared),
        `changed_at` (UTC), `source` ("person", "integration" or "unknown") and `by` (the user
        id or app id as text, "" when the CRM does not say). At most one row per (contact,
        field); none when heatsync's own write is the latest. Meant for the few contacts whose
        heatsync fields differ from what heatsync last wrote: cost grows with `contact_ids`.
        """
        ...

    def signals_since(self, since: datetime) -> pd.Series:
        """Contacts with evidence that may be hot (a form submission, an inbound call, message
        or reply, a meeting booked) after `since`: contact id -> when (UTC). One or two requests:
        the fast lane asks every few seconds. heatsync's own writes are never a signal."""
        ...


def field_changes(scores: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """Compare scores with the values the CRM holds (`current_*` columns of contacts).

    Returns one row per contact with at least one differing field: `contact_id`, each
    WRITABLE_FIELDS column with the new value, and a boolean `changed_<field>` per field saying
    whether that field differs (a None new value with `changed_` True means "clear it"; only
    CLEARABLE_FIELDS are ever cleared). Vectorized: no per-row Python.
    """
    merged = scores.drop_duplicates("contact_id").set_index("contact_id")
    merged = merged[[c for c in WRITABLE_FIELDS if c in merged.columns]]
    current = contacts.drop_duplicates("contact_id").set_index("contact_id").reindex(merged.index)
    masks: dict[str, pd.Series] = {}
    for name in merged.columns:
        new = merged[name]
        old = current.get(f"current_{name}")
        if old is None:
            masks[f"changed_{name}"] = new.notna()
            continue
        if name in ("score", "touches_30d"):
            new_v = pd.to_numeric(new, errors="coerce").round(0)
            old_v = pd.to_numeric(old, errors="coerce").round(0)
        elif name == "next_touch_due":
            new_v = _as_naive_day(new)
            old_v = _as_naive_day(old)
        else:
            new_v = new.astype("object").where(new.notna(), "").astype(str)
            old_v = old.astype("object").where(old.notna(), "").astype(str)
        same = (new_v == old_v) | (new_v.isna() & old_v.isna())
        if name not in CLEARABLE_FIELDS:
            same |= _blank(new) & ~_blank(old)
        masks[f"changed_{name}"] = ~same
    mask_frame = pd.DataFrame(masks, index=merged.index)
    if len(mask_frame.columns):
        any_changed = mask_frame.any(axis=1)
    else:
        any_changed = pd.Series(False, index=mask_frame.index)
    out = pd.concat([merged, mask_frame], axis=1).loc[any_changed]
    out.index.name = "contact_id"
    return out.reset_index()


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA (a scalar); anything else, arrays included, is a value."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def changed_fields_of(record: dict[str, Any]) -> list[str]:
    """The WRITABLE_FIELDS one row of `field_changes` asks to write: its `changed_<field>` flag,
    or, in a frame without flags, every field given a value."""
    names = []
    for name in WRITABLE_FIELDS:
        flag = record.get(f"changed_{name}")
        if flag is None and name in record:
            flag = not is_missing(record[name])
        if bool(flag) and not is_missing(flag):
            names.append(name)
    return names


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("object").astype(str).str.strip() == "")


def _as_naive_day(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize()
