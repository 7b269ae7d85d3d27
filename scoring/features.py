"""As-of preparation of the canonical tables: what was known at `as_of`, aged in local days.

`prepare(contacts, activities, deals, as_of, config, tz)` conforms the three tables, keeps only
contacts created on or before `as_of`, activities with occurred_at <= as_of and deals created on or
before `as_of` (a deal closed after `as_of` is seen as open with unknown probability), and tags each
activity with its signal rule (rule index, reason code, points including engagement depth, decay
and decayed contribution), intent flag and whether it is a touch. Ages are whole days between
local calendar dates in time zone `tz`, so a re-run on the same local day gives the same ages
whatever the hour. Independent passes over the activities run on two threads (numpy lets go of
the GIL); their results are put together in a fixed order, so they never depend on timing.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract
from scoring.codes import (
    _activity_contacts,
    _column,
    _int_type,
    _missing_as,
    contact_rows,
    last_of_each_key,
    text_codes,
)
from scoring.config import ScoringConfig
from scoring.groups import dense_groups

UNKNOWN = "unknown"
DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class Prepared:
    """The as-of inputs of one run; `cidx` is the row position of a contact in `contacts`."""

    contacts: pd.DataFrame
    activities: pd.DataFrame
    deals: pd.DataFrame
    as_of: pd.Timestamp
    as_of_date: pd.Timestamp  # local calendar date of as_of, naive midnight
    tz: str
    # per-contact figures computed once per run and read by several parts (e.g. profile terms)
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


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


# combinations of coded columns below which every possible one is listed
EVERY_COMBINATION = 1 << 16


def _combos(columns: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, pd.DataFrame]:
    """Per row the number of its combination of the coded columns (codes, names), and the
    distinct combinations (a missing value as None)."""
    names = [
        np.append(np.asarray(uniques, dtype=object), np.array([None], dtype=object))
        for _, uniques in columns.values()
    ]
    size = int(np.prod([len(v) for v in names], dtype=float))
    wide: type[np.signedinteger[Any]] = np.int32 if size < 2**31 else np.int64
    key: np.ndarray = np.zeros(len(next(iter(columns.values()))[0]), dtype=wide)
    for (codes, _), values in zip(columns.values(), names, strict=True):
        key *= len(values)
        key += _missing_as(codes, len(values) - 1, wide)
    if size <= EVERY_COMBINATION:  # a row per possible combination: the key is the row
        per_row, keys = key, np.arange(size)
    elif size <= max(4 * len(key), 2**16):
        per_row, keys = dense_groups(key, size)
    else:
        per_row, keys = pd.factorize(key)
    keys = np.asarray(keys, dtype="int64")
    digits: dict[str, np.ndarray] = {}
    for col, values in zip(list(columns)[::-1], names[::-1], strict=True):
        keys, digit = np.divmod(keys, len(values))
        digits[col] = values[digit]
    return per_row, pd.DataFrame({col: digits[col] for col in columns})


def _rule_of_combos(combos: pd.DataFrame, config: ScoringConfig) -> np.ndarray:
    rule_idx = np.full(len(combos), -1)
    # a missing direction or outcome matches rules as UNKNOWN
    direction = combos["direction"].fillna(UNKNOWN)
    outcome = combos["outcome"].fillna(UNKNOWN)
    for i, rule in enumerate(config.signals):
        m = combos["type"].isin(rule.types).to_numpy()
        if rule.directions is not None:
            m &= direction.isin(rule.directions).to_numpy()
        if rule.outcomes is not None:
            m &= outcome.isin(rule.outcomes).to_numpy()
        if rule.intent is not None:
            m &= (combos["intent"] == rule.intent).to_numpy()
        rule_idx[(rule_idx == -1) & m] = i
    return rule_idx


def _rule_table(config: ScoringConfig) -> pd.DataFrame:
    """One row per signal rule and a trailing "no rule" row (indexed by -1)."""
    return pd.DataFrame(
        {
            "rule": [*range(len(config.signals)), -1],
            "code": [r.code for r in config.signals] + [None],
            "points": [r.points for r in config.signals] + [0.0],
            "per_minute": [r.points_per_minute for r in config.signals] + [0.0],
            "max_minutes": [r.max_minutes for r in config.signals] + [0.0],
            "signal_class": [r.signal_class for r in config.signals] + [None],
            "half_life": [config.half_life_days.get(r.signal_class, np.nan) for r in config.signals]
            + [np.nan],
        }
    )


def _match_rules(acts: pd.DataFrame, config: ScoringConfig) -> pd.DataFrame:
    """Per activity: rule index (-1 none), code, points, per_minute, max_minutes, signal_class.

    Rules are matched once per distinct (type, direction, outcome, intent) combination and the
    result broadcast back, so the cost does not grow with the number of rules times rows.
    """
    columns = {c: pd.factorize(acts[c]) for c in ("type", "direction", "outcome", "intent")}
    per_row_combo, combos = _combos({c: (k, np.asarray(u)) for c, (k, u) in columns.items()})
    rule_idx = _rule_of_combos(combos, config)
    per_row = rule_idx[per_row_combo] if len(acts) else np.array([], dtype=int)
    # -1 indexes the trailing "no rule" row of the table
    return _rule_table(config).iloc[per_row].reset_index(drop=True)


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


def _day_numbers(ts: pd.Series, tz: str) -> np.ndarray:
    """Days since 1970-01-01 of each timestamp's local calendar date in `tz` (no NaT)."""
    index = pd.DatetimeIndex(ts)
    if str(tz) != "UTC":
        index = index.tz_convert(tz).tz_localize(None)  # local wall-clock time
    return np.asarray(np.floor_divide(index.asi8, DAY_NS))


def _prepare_activities(
    activities: pd.DataFrame,
    c: pd.DataFrame,
    as_of: pd.Timestamp,
    as_of_date: pd.Timestamp,
    config: ScoringConfig,
    tz: str,
) -> pd.DataFrame:
    """The activities known at as_of of the contacts in `c`, with the columns scoring uses.

    Text columns are integer-coded once (text_codes) and never turned into a Python string per
    row: contact ids, type, direction and outcome come out as categoricals, the intent words are
    searched in each distinct text once.
    """
    spec = contract.ACTIVITIES
    a = activities
    with ThreadPoolExecutor(1, thread_name_prefix="heatsync-prepare") as pool:
        # each row's contact is looked up beside the work on the rows' own values below (at 20M
        # rows the two take about as long; both are numpy work that lets go of the GIL)
        contacts_of_rows = pool.submit(_activity_contacts, a, c)
        try:
            occurred = contract._series(
                _column(a, "occurred_at").set_axis(pd.RangeIndex(len(a))), "ts"
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"activities.occurred_at: {exc}") from exc
        coded = {col: text_codes(_column(a, col)) for col in ("type", "direction", "outcome")}
        # intent: a type that can carry it, with a text that names an intent word (each distinct
        # text searched once)
        type_codes, type_names = coded["type"]
        intent = np.append(np.isin(type_names, list(config.intent_types)), False)[type_codes]
        texts = _column(a, "text")
        if isinstance(texts.dtype, pd.CategoricalDtype):  # the categories, not a str per row
            rows = np.asarray(texts.cat.codes)[intent]
            texts = pd.Series(pd.Categorical.from_codes(rows, texts.cat.categories, validate=False))
            text, text_names = text_codes(texts)
        else:
            text, text_names = text_codes(texts.to_numpy()[intent])
        hits = pd.Series(text_names, dtype=object).str.contains(intent_pattern(config))
        intent[intent] = np.append(hits.to_numpy(dtype=bool), False)[text]  # missing text: -1
        flags = (intent.astype("int8"), np.array([False, True]))
        per_row, combos = _combos({**coded, "intent": flags})
        # whole local days since each activity (a missing time gives a number, never kept)
        days = _day_numbers(occurred, tz)
        np.subtract(as_of_date.value // DAY_NS, days, out=days)
        age = days.astype("int32")
        del days
        cidx, id_codes, id_names = contacts_of_rows.result()
    keep = (occurred.notna() & (occurred <= as_of)).to_numpy() & (cidx >= 0)
    every = bool(keep.all())

    def take(values: Any) -> Any:
        return values if every else values[keep]

    def conformed(name: str) -> np.ndarray:
        values = _column(a, name)
        try:
            return np.asarray(contract._series(values, spec[name]).to_numpy())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"activities.{name}: {exc}") from exc

    # the kept rows only (the columns taken side by side), in the smallest integer types that
    # hold them (memory at 20M rows)
    rows = {
        "cidx": cidx,
        "id_codes": id_codes,
        "intent": intent,
        "per_row": per_row,
        "stamps": occurred.array,
        "age": age,
        "is_rollup": conformed("is_rollup"),
        "duration_s": conformed("duration_s"),
        **{col: codes for col, (codes, _) in coded.items()},
    }
    del cidx, id_codes, intent, per_row, age
    with ThreadPoolExecutor(2, thread_name_prefix="heatsync-prepare") as pool:
        kept = dict(zip(rows, pool.map(take, rows.values()), strict=True))
    del rows
    cidx = kept["cidx"].astype(_int_type(len(c)))
    id_codes = kept["id_codes"].astype(_int_type(len(id_names)))
    intent, per_row, stamps, age = kept["intent"], kept["per_row"], kept["stamps"], kept["age"]
    coded = {
        col: (kept[col].astype(_int_type(len(names))), names)
        for col, (codes, names) in coded.items()
    }

    rule = _rule_of_combos(combos, config).astype(_int_type(len(config.signals)))[per_row]
    touch = _touch_mask(combos, config).to_numpy(dtype=bool)[per_row]
    del per_row
    table = _rule_table(config)
    at = np.where(rule < 0, len(table) - 1, rule).astype(rule.dtype)

    classes = table["signal_class"].dropna().unique()
    class_code = pd.Index(classes).get_indexer(table["signal_class"]).astype(np.int8)
    # reason codes as a categorical: one byte a row, not a str pointer
    code_of_rule, code_names = pd.factorize(table["code"])
    code_of_rule = code_of_rule.astype(_int_type(len(code_names)))
    columns: dict[str, Any] = {
        "contact_id": pd.Categorical.from_codes(id_codes, id_names, validate=False),
        "occurred_at": stamps,
        **{
            col: pd.Categorical.from_codes(codes, names, validate=False)
            for col, (codes, names) in coded.items()
        },
        "is_rollup": kept["is_rollup"],
        "cidx": cidx,
        "age": age,
        "intent": intent,
        "rule": rule,
        "code": pd.Categorical.from_codes(code_of_rule[at], code_names, validate=False),
        "is_touch": touch,
        "signal_class": pd.Categorical.from_codes(class_code[at], classes, validate=False),
    }
    rollup = _rollup_factor(pd.DataFrame(columns, copy=False), c, config)
    columns.update(_points(kept.pop("duration_s"), age, at, rollup, table))
    return pd.DataFrame(columns, copy=False)


# (rule, age) pairs up to which the decay is looked up rather than computed per activity
DECAY_TABLE_CELLS = 1 << 22
# rows per piece of the per-activity arithmetic, and threads working on the pieces
ROWS_PER_PIECE = 1 << 20
PIECE_THREADS = min(2, os.cpu_count() or 1)


def _points(
    duration_s: np.ndarray, age: np.ndarray, at: np.ndarray, rollup: np.ndarray, table: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Per activity: minutes (engagement depth), points, decay and decayed contribution.

    Row by row arithmetic, worked out a piece of rows at a time into the four columns, the pieces
    side by side (numpy lets go of the GIL): the same operations on the same values as on whole
    columns, without a 160 MB temporary per step at 20M rows.
    """
    n = len(age)
    out = {name: np.empty(n) for name in ("minutes", "points", "decay", "contrib")}
    per_rule = {
        name: table[name].to_numpy(dtype=float)
        for name in ("max_minutes", "per_minute", "points", "half_life")
    }
    scaled = bool((rollup != 1.0).any())  # times 1.0 changes nothing: skipped
    # 0.5 ** (age / half-life) worked out once per (rule, age) that can occur, when they are
    # few: the same operation on the same numbers as per row, without a pow() per activity
    low = int(age.min()) if n else 0
    width = int(age.max()) - low + 1 if n else 0
    decay_of: np.ndarray | None = None
    if 0 < width and len(table) * width <= DECAY_TABLE_CELLS:
        ages = np.arange(low, low + width, dtype=age.dtype)
        decay_of = np.divide(ages[np.newaxis, :], per_rule["half_life"][:, np.newaxis])
        np.power(0.5, decay_of, out=decay_of)
        decay_of = decay_of.ravel()

    def piece(start: int) -> None:
        rows = slice(start, min(start + ROWS_PER_PIECE, n))
        rule = at[rows]
        # engagement depth: minutes of the activity (0 when unknown), bounded per rule
        minutes = out["minutes"][rows]
        minutes[:] = duration_s[rows]
        np.nan_to_num(minutes, copy=False, nan=0.0)
        minutes /= 60.0
        np.clip(minutes, 0.0, per_rule["max_minutes"][rule], out=minutes)
        points = out["points"][rows]
        np.take(per_rule["per_minute"], rule, out=points)
        points *= minutes
        points += per_rule["points"][rule]
        if scaled:
            points *= rollup[rows]
        # what one point of the activity's rule is worth today (roll-up and recency)
        decay = out["decay"][rows]
        if decay_of is not None:
            cell = rule.astype(np.int32)
            cell *= width
            cell += age[rows]
            cell -= low
            np.take(decay_of, cell, out=decay)
        else:
            np.divide(age[rows], per_rule["half_life"][rule], out=decay)
            np.power(0.5, decay, out=decay)
        if scaled:
            decay *= rollup[rows]
        np.nan_to_num(decay, copy=False, nan=0.0)
        np.multiply(points, decay, out=out["contrib"][rows])

    starts = range(0, n, ROWS_PER_PIECE)
    if PIECE_THREADS > 1 and len(starts) > 1:
        with ThreadPoolExecutor(PIECE_THREADS, thread_name_prefix="heatsync-points") as pool:
            list(pool.map(piece, starts))
    else:
        for start in starts:
            piece(start)
    return out


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
    c = c[last_of_each_key(c)].reset_index(drop=True)
    c["created_age"] = age_days(c["created_at"], as_of_date, tz)

    with ThreadPoolExecutor(1, thread_name_prefix="heatsync-deals") as pool:
        prepared_deals = pool.submit(_prepare_deals, deals, c, as_of, as_of_date, tz)
        a = _prepare_activities(activities, c, as_of, as_of_date, config, tz)
        d = prepared_deals.result()
    return Prepared(contacts=c, activities=a, deals=d, as_of=as_of, as_of_date=as_of_date, tz=tz)


def _prepare_deals(
    deals: pd.DataFrame, c: pd.DataFrame, as_of: pd.Timestamp, as_of_date: pd.Timestamp, tz: str
) -> pd.DataFrame:
    """The deals created by as_of of the contacts in `c`, as they stood then."""
    d = contract.conform(deals, "deals")
    d = d[d["created_at"].notna() & (d["created_at"] <= as_of)]
    cidx = contact_rows(d, c)
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
    return d
