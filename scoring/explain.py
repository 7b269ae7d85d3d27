"""Reasons: why a contact scored as it did, as codes and as texts in the portal's locale.

The evidence table (cidx, code, strength, days, count) from scoring.temperature is joined with
non-activity reasons (no_recent_activity / no_activity, overdue_vs_rhythm for at_risk,
problems_reported for difficult, frequent_buyer for key, fan_activity for fans), ranked by
|strength| per contact, and rendered from scoring/locales/<locale>.yaml. A text may come in
variants by days (today, yesterday, other; earlier when nothing is in the count window) or, for a
chance in percent, by its size (low, medium, high), so the words never contradict the number.
Templates are filled vectorized: one pass per distinct template, string operations on whole
Series.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from scoring.codes import text_codes
from scoring.config import ScoringConfig
from scoring.features import Prepared
from scoring.groups import group_int_min

LOCALES_DIR = Path(__file__).with_name("locales")
_PLACEHOLDER = re.compile(r"(\{[a-z_]+\})")


@lru_cache(maxsize=16)
def load_locale(locale: str) -> dict[str, Any]:
    """The texts of `locale` (en, ru, lv, ...); ValueError for an unknown locale."""
    if not re.fullmatch(r"[a-z]{2}(?:[-_][A-Za-z]{2})?", locale or ""):
        raise ValueError(f"invalid locale {locale!r}")
    path = LOCALES_DIR / f"{locale}.yaml"
    if not path.exists():
        path = LOCALES_DIR / f"{locale[:2]}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in LOCALES_DIR.glob("*.yaml"))
        raise ValueError(f"unknown locale {locale!r}; available: {known}")
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def fill(template: str, values: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """Fill `{name}` placeholders of one template from aligned string Series (vectorized)."""
    out = pd.Series("", index=index, dtype="object")
    for part in _PLACEHOLDER.split(template):
        if not part:
            continue
        key = part[1:-1]
        if part.startswith("{") and key in values:
            out = out + values[key].astype(str)
        else:
            out = out + part
    return out


def join_groups(groups: pd.Series, texts: pd.Series, sep: str, n: int) -> pd.Series:
    """Join `texts` per integer group id 0..n-1 (rows sorted by group), "" for empty groups.

    np.add.reduceat concatenates object strings inside numpy, without a Python loop per group.
    """
    out = np.full(n, "", dtype=object)
    if len(texts) == 0:
        return pd.Series(out)
    g = groups.to_numpy(dtype="int64")
    first = np.r_[True, g[1:] != g[:-1]]
    starts = np.flatnonzero(first)
    # the separator goes before every text but a group's first, so nothing is cut off after
    parts = texts.astype(str).to_numpy(dtype=object, copy=True)
    parts[~first] = sep + parts[~first]
    out[g[starts]] = np.add.reduceat(parts, starts)
    return pd.Series(out)


def _int_text(values: pd.Series) -> pd.Series:
    """Whole numbers as text (NaN as 0), each distinct number converted once."""
    codes, distinct = pd.factorize(values.fillna(0).round().astype("int64"))
    text = np.asarray(distinct, dtype="int64").astype(str).astype(object)
    return pd.Series(text[codes], index=values.index, dtype=object)


CHANCE_LEVELS = ("low", "medium", "high")


def render_reasons(
    codes: pd.Series,
    days: pd.Series,
    count: pd.Series,
    locale: str,
    chance_levels: tuple[float, float],
) -> pd.Series:
    """One text per row from its reason code; unknown codes render as the code itself.

    A text with low/medium/high variants takes "medium" from chance_levels[0] percent (its
    rounded {count}) and "high" from chance_levels[1].
    """
    templates: dict[str, Any] = load_locale(locale).get("reasons", {})
    codes = codes.reset_index(drop=True)
    days = days.reset_index(drop=True)
    count = count.reset_index(drop=True)
    variant = np.select(
        [count == 0, days == 0, days == 1], ["earlier", "today", "yesterday"], default="other"
    )
    shown = count.fillna(0).round()
    level = np.select(
        [shown >= chance_levels[1], shown >= chance_levels[0]], ["high", "medium"], default="low"
    )

    def pick(entry: Any, var: str, lvl: str) -> str | None:
        if isinstance(entry, str):
            return entry
        if isinstance(entry, dict):
            if any(k in entry for k in CHANCE_LEVELS):
                return entry.get(lvl) or entry.get("other")
            found = entry.get(var)
            if found is None and var == "earlier":  # no count-free text: fall back by days
                found = entry.get("other")
            return found or entry.get("other")
        return None

    key = pd.DataFrame({"code": codes, "variant": variant, "level": level})
    text = codes.astype("object").copy()
    values = {"days": _int_text(days), "count": _int_text(count)}
    # one pass to find the rows of each (code, variant, level), then one fill per template
    groups: dict[tuple[str, str, str], np.ndarray] = key.groupby(
        ["code", "variant", "level"], sort=False
    ).indices
    for (code, var, lvl), rows in groups.items():
        template = pick(templates.get(code), var, lvl)
        if template is None:
            continue
        idx = key.index[rows]
        text[idx] = fill(template, {k: v[idx] for k, v in values.items()}, idx)
    return text


def last_positive_days(prep: Prepared) -> np.ndarray:
    """Per contact the days since their latest activity with positive points (NaN if none);
    kept in prep.memo, so that the activities may be let go before the reasons are made."""
    if "last_positive_days" not in prep.memo:
        a = prep.activities
        positive = (a["points"] > 0).to_numpy()
        cidx = a["cidx"].to_numpy()[positive]
        ages = a["age"].to_numpy()[positive]
        prep.memo["last_positive_days"] = group_int_min(cidx, ages, len(prep.contacts))
    days: np.ndarray = prep.memo["last_positive_days"]
    return days


def _extra_reasons(
    prep: Prepared,
    ev: pd.DataFrame,
    feats: pd.DataFrame,
    segment: np.ndarray,
    config: ScoringConfig,
) -> pd.DataFrame:
    r = config.reasons
    n = len(prep.contacts)
    last_pos = pd.Series(last_positive_days(prep))
    # a purchase is activity from them too
    won = prep.deals[prep.deals["status"] == "won"]
    last_won = won.groupby("cidx")["closed_age"].min().reindex(pd.RangeIndex(n))
    last_pos = pd.concat([last_pos, last_won.clip(lower=0)], axis=1).min(axis=1)
    frames = []

    stale = last_pos > r.no_recent_activity_days
    never = last_pos.isna()
    for mask, code in ((stale, "no_recent_activity"), (never, "no_activity")):
        idx = np.flatnonzero(mask.to_numpy())
        frames.append(
            pd.DataFrame(
                {
                    "cidx": idx,
                    "code": code,
                    "strength": -r.no_recent_activity_strength,
                    "days": last_pos.to_numpy()[idx],
                    "count": np.nan,
                }
            )
        )

    seg_rules = (
        (
            "at_risk",
            "overdue_vs_rhythm",
            r.overdue_vs_rhythm_strength,
            feats["days_since_won"],
            feats["median_gap"],
        ),
        (
            "difficult",
            "problems_reported",
            -r.problems_reported_strength,
            pd.Series(np.nan, index=feats.index),
            feats["issues"],
        ),
        (
            "key",
            "frequent_buyer",
            r.frequent_buyer_strength,
            feats["days_since_won"],
            feats["won_window"],
        ),
        (
            "fan",
            "fan_activity",
            r.fan_activity_strength,
            pd.Series(np.nan, index=feats.index),
            feats["fan_events"],
        ),
    )
    for seg, code, strength, days, count in seg_rules:
        idx = np.flatnonzero(segment == seg)
        frames.append(
            pd.DataFrame(
                {
                    "cidx": idx,
                    "code": code,
                    "strength": strength,
                    "days": days.to_numpy(dtype=float)[idx],
                    "count": count.to_numpy(dtype=float)[idx],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def strongest_first(allr: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by cidx, then `abs` descending, then code (ties kept in order), with each
    row's `rank` within its contact: one sort on numbers (codes ranked as text once)."""
    code, names = text_codes(allr["code"])
    by_text = np.empty(len(names), dtype="int64")
    by_text[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    cidx = allr["cidx"].to_numpy(dtype="int64")
    order = np.lexsort((by_text[code], -allr["abs"].to_numpy(dtype=float), cidx))
    out = allr.take(order)
    cidx = cidx[order]
    starts = np.flatnonzero(np.r_[True, cidx[1:] != cidx[:-1]]) if len(cidx) else cidx
    out["rank"] = np.arange(len(cidx)) - np.repeat(starts, np.diff(np.r_[starts, len(cidx)]))
    return out


def reasons(
    prep: Prepared,
    ev: pd.DataFrame,
    feats: pd.DataFrame,
    segment: np.ndarray,
    config: ScoringConfig,
    locale: str,
) -> pd.DataFrame:
    """Per contact (aligned with prep.contacts): reason_codes (all, strongest first) and reasons
    (top_n rendered texts joined by "; ")."""
    n = len(prep.contacts)
    allr = pd.concat(
        [
            ev[["cidx", "code", "strength", "days", "count"]],
            _extra_reasons(prep, ev, feats, segment, config),
        ],
        ignore_index=True,
    )
    strength = allr["strength"].abs().to_numpy()
    keep = strength >= config.reasons.min_strength
    allr = allr.loc[keep, ["cidx", "code", "days", "count"]]  # what is left to show
    allr["abs"] = strength[keep]
    allr = strongest_first(allr)
    codes = join_groups(allr["cidx"], allr["code"], ",", n)
    top = allr[allr["rank"] < config.reasons.top_n].reset_index(drop=True)
    levels = (config.reasons.chance_medium, config.reasons.chance_high)
    top["text"] = render_reasons(top["code"], top["days"], top["count"], locale, levels)
    texts = join_groups(top["cidx"], top["text"], "; ", n)
    return pd.DataFrame({"reason_codes": codes, "reasons": texts})
