"""As-of preparation of the canonical tables: what was known at `as_of`, aged in local days.

`prepare(contacts, activities, deals, as_of, config, tz)` conforms the three tables, keeps only
contacts created on or before `as_of`, activities with occurred_at <= as_of and deals created on or
before `as_of` (a deal closed after `as_of` is seen as open with unknown probability), and tags each
activity with its signal rule (rule index, reason code, points including engagement depth, decay
and decayed contribution), intent flag and whether it is a touch. Ages are whole days between
local calendar dates in time zone `tz`, so a re-run on the same local day gives the same ages
whatever the hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring import contract
from scoring.config import ScoringConfig

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Prepared:
    """The as-of inputs of one run; `cidx` is the row position of a contact in `contacts`."""

    contacts: pd.DataFrame
    activities: pd.DataFrame
    deals: pd.DataFrame
    as_of: pd.Timestamp
    as_of_date: pd.Timestamp  # local calendar date of as_of, naive midnight
    tz: str


def to_utc(ts: pd.Timestamp | str) -> pd.Timestamp:
    """A tz-aware UTC timestamp; naive input is taken as UTC."""
    out = pd.Timestamp(ts)
    return out.tz_localize("UTC") if out.tzinfo is None else out.tz_convert("UTC")


def local_dates(ts: pd.Series, tz: str) -> pd.Series:
    """Local calendar dates (naive midnights) of UTC timestamps."""
    return ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def local_date(ts: pd.Timestamp, tz: str) -> pd.Timestamp:
    return ts.tz_convert(tz).tz_localize(None).normalize()


def local_midnight_utc(date: pd.Timestamp, tz: str) -> pd.Timestamp:
    """UTC instant of local midnight starting `date` (a naive date) in `tz`."""
    return date.tz_localize(tz, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")


def age_days(ts: pd.Series, as_of_date: pd.Timestamp, tz: str) -> pd.Series:
    """Whole local days from each timestamp's date to as_of's date (NaN where ts is null)."""
    return (as_of_date - local_dates(ts, tz)).dt.days


def intent_pattern(config: ScoringConfig) -> re.Pattern[str]:
    words = sorted({w.strip().lower() for ws in config.intent_words.values() for w in ws if w})
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + ")", re.IGNORECASE)


def _contact_index(frame: pd.DataFrame, contacts: pd.DataFrame) -> np.ndarray:
    """Row position in `contacts` of each row's (portal, contact_id), -1 if unknown."""
    keys = pd.MultiIndex.from_frame(contacts[["portal", "contact_id"]])
    probe = pd.MultiIndex.from_frame(frame[["portal", "contact_id"]])
    return np.asarray(keys.get_indexer(probe))


def _match_rules(acts: pd.DataFrame, config: ScoringConfig) -> pd.DataFrame:
    """Per activity: rule index (-1 none), code, points, per_minute, max_minutes, signal_class.

    Rules are matched once per distinct (type, direction, outcome, intent) combination and the
    result broadcast back, so the cost does not grow with the number of rules times rows.
    """
    # each column as integer codes (a null as its own code), combined into one key per row
    columns = ("type", "direction", "outcome", "intent")
    key = np.zeros(len(acts), dtype="int64")
    names: list[np.ndarray] = []
    for col in columns:
        codes, uniques = pd.factorize(acts[col])
        fill = UNKNOWN if col in ("direction", "outcome") else None
        values = np.append(np.asarray(uniques, dtype=object), np.array([fill], dtype=object))
        key = key * len(values) + np.where(codes < 0, len(values) - 1, codes)
        names.append(values)
    per_row_combo, keys = pd.factorize(key)
    keys = np.asarray(keys, dtype="int64")
    digits: dict[str, np.ndarray] = {}
    for col, values in zip(columns[::-1], names[::-1], strict=True):
        keys, digit = np.divmod(keys, len(values))
        digits[col] = values[digit]
    combos = pd.DataFrame({col: digits[col] for col in columns})
    rule_idx = np.full(len(combos), -1)
    for i, rule in enumerate(config.signals):
        m = combos["type"].isin(rule.types).to_numpy()
        if rule.directions is not None:
            m &= combos["direction"].isin(rule.directions).to_numpy()
        if rule.outcomes is not None:
            m &= combos["outcome"].isin(rule.outcomes).to_numpy()
        if rule.intent is not None:
            m &= (combos["intent"] == rule.intent).to_numpy()
        rule_idx[(rule_idx == -1) & m] = i
    table = pd.DataFrame(
        {
            "rule": [*range(len(config.signals)), -1],
            "code": [r.code for r in config.signals] + [None],
            "points": [r.points for r in config.signals] + [0.0],
            "per_minute": [r.points_per_minute for r in config.signals] + [0.0],
            "max_minutes": [r.max_minutes for r in config.signals] + [0.0],
            "signal_class": [r.signal_class for r in config.signals] + [None],
        }
    )
    per_row = rule_idx[per_row_combo] if len(acts) else np.array([], dtype=int)
    # -1 indexes the trailing "no rule" row of `table`
    return table.iloc[per_row].reset_index(drop=True)


def _rollup_factor(acts: pd.DataFrame, contacts: pd.DataFrame, config: ScoringConfig) -> np.ndarray:
    factor = np.ones(len(acts))
    count_cols = [
        c
        for c in contacts.columns
        if c.endswith("_count") and c[: -len("_count")] in contract.ACTIVITY_TYPES
    ]
    rollup = acts["is_rollup"].to_numpy()
    if not count_cols or not rollup.any() or config.rollup.count_bonus == 0:
        return factor
    counts = contacts[count_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    col_of_type = {c[: -len("_count")]: j for j, c in enumerate(count_cols)}
    sub = acts.loc[rollup, ["cidx", "type"]]
    col = sub["type"].astype(object).map(col_of_type)
    has = col.notna().to_numpy()
    rows = sub["cidx"].to_numpy()[has]
    n = counts[rows, col.to_numpy()[has].astype(int)]
    n = np.nan_to_num(np.clip(n, 0, None))
    idx = np.flatnonzero(rollup)[has]
    factor[idx] = 1.0 + config.rollup.count_bonus * np.log1p(n)
    return factor


def _touch_mask(acts: pd.DataFrame, config: ScoringConfig) -> pd.Series:
    t = config.touches
    call = acts["type"] == "call"
    inbound = acts["direction"] == "inbound"
    return (
        acts["type"].isin(t.types)
        | (call & ~inbound)
        | (call & inbound & acts["outcome"].isin(t.call_inbound_outcomes))
        | ((acts["type"] == "meeting") & acts["outcome"].isin(t.meeting_outcomes))
    )


def prepare(
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp | str,
    config: ScoringConfig,
    tz: str,
) -> Prepared:
    """Conform and filter the inputs as of `as_of`; see the module docstring."""
    as_of = to_utc(as_of)
    as_of_date = local_date(as_of, tz)

    c = contract.conform(contacts, "contacts")
    c = c[c["created_at"].isna() | (c["created_at"] <= as_of)]
    c = c.drop_duplicates(["portal", "contact_id"], keep="last").reset_index(drop=True)
    c["created_age"] = age_days(c["created_at"], as_of_date, tz)

    a = contract.conform(activities, "activities")
    cidx = _contact_index(a, c)
    keep = (a["occurred_at"].notna() & (a["occurred_at"] <= as_of)).to_numpy() & (cidx >= 0)
    a = a[keep].reset_index(drop=True)
    a["cidx"] = cidx[keep]
    # integer-coded: the masks below and in temperature, segments and touches compare codes
    for col in ("type", "direction", "outcome"):
        a[col] = a[col].astype("category")
    a["age"] = age_days(a["occurred_at"], as_of_date, tz).astype("int64")
    has_text = a["text"].notna() & a["type"].isin(config.intent_types)
    pattern = intent_pattern(config)
    a["intent"] = a["text"].where(has_text).str.contains(pattern, na=False).astype(bool)
    matched = _match_rules(a, config)
    a["rule"] = matched["rule"].to_numpy(dtype="int64")
    a["code"] = matched["code"].to_numpy()
    a["signal_class"] = matched["signal_class"].to_numpy()
    # engagement depth: minutes of the activity (0 when unknown), bounded per rule
    duration = np.nan_to_num(a["duration_s"].to_numpy(dtype=float), nan=0.0)
    a["minutes"] = np.clip(duration / 60.0, 0.0, matched["max_minutes"].to_numpy(dtype=float))
    rollup = _rollup_factor(a, c, config)
    per_minute = matched["per_minute"].to_numpy(dtype=float) * a["minutes"].to_numpy()
    a["points"] = (matched["points"].to_numpy(dtype=float) + per_minute) * rollup
    half_life = a["signal_class"].map(config.half_life_days).to_numpy(dtype=float)
    # what one point of the activity's rule is worth today (roll-up and recency)
    a["decay"] = np.nan_to_num(rollup * np.power(0.5, a["age"].to_numpy() / half_life), nan=0.0)
    a["contrib"] = a["points"].to_numpy() * a["decay"].to_numpy()
    a["is_touch"] = _touch_mask(a, config).to_numpy()

    d = contract.conform(deals, "deals")
    d = d[d["created_at"].notna() & (d["created_at"] <= as_of)]
    cidx = _contact_index(d, c)
    d = d[cidx >= 0].assign(cidx=cidx[cidx >= 0]).reset_index(drop=True)
    closed_at = d["closed_at"].where(
        d["closed_at"].notna() | (d["status"] == "open"), d["created_at"]
    )
    closed_by_then = closed_at.notna() & (closed_at <= as_of)
    final = d["status"].isin(["won", "lost"])
    d["status"] = np.where(final & closed_by_then, d["status"], "open")
    # a deal that closed after as_of: its stage then is unknown
    d["stage_probability"] = d["stage_probability"].where(~final | closed_by_then)
    d["closed_at"] = closed_at.where(d["status"] != "open")
    d["created_age"] = age_days(d["created_at"], as_of_date, tz)
    d["closed_date"] = local_dates(d["closed_at"], tz)
    d["closed_age"] = (as_of_date - d["closed_date"]).dt.days

    return Prepared(contacts=c, activities=a, deals=d, as_of=as_of, as_of_date=as_of_date, tz=tz)
