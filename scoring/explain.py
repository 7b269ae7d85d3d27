"""Reasons: why a contact scored as it did, as codes and as texts in the portal's locale.

The evidence table (cidx, code, strength, days, count) from scoring.temperature is joined with
non-activity reasons (no_recent_activity / no_activity, overdue_vs_rhythm for at_risk,
problems_reported for difficult, frequent_buyer for key, fan_activity for fans), ranked by
|strength| per contact, and rendered from scoring/locales/<locale>.yaml. A text may come in
variants by days (today, yesterday, other; earlier when nothing is in the count window) or, for a
chance in percent, by its size (low, medium, high), so the words never contradict the number.
Reason codes are integers throughout: the rows are put in order by one stable sort of an integer
key (contact, strength as the leading bits of its float, code), a text is rendered once per
distinct (code, days, count), one pass per distinct template with string operations on whole
Series, and the codes and texts of each contact are joined once per distinct prefix
(scoring/joined.py).
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
from scoring.groups import group_int_min, group_min
from scoring.joined import first_of_codes, group_starts, join_per_group

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


def _is(values: pd.Series, text: str) -> np.ndarray:
    """values == text as a plain bool array (missing: False), for object, categorical or Arrow
    text columns."""
    return np.asarray((values == text).fillna(False), dtype=bool)


def _extra_reasons(
    prep: Prepared, feats: pd.DataFrame, segment: np.ndarray, config: ScoringConfig
) -> list[tuple[np.ndarray, str, float, np.ndarray, np.ndarray]]:
    """The non-activity reasons as (cidx, code, strength, days, count) parts, in order."""
    r = config.reasons
    n = len(prep.contacts)
    last_pos = last_positive_days(prep)
    # a purchase is activity from them too
    d = prep.deals
    won = _is(d["status"], "won") if len(d) else np.zeros(0, dtype=bool)
    last_won = group_min(
        d["cidx"].to_numpy(dtype=np.int64)[won], d["closed_age"].to_numpy(dtype=float)[won], n
    )
    last_pos = np.fmin(last_pos, pd.Series(last_won).clip(lower=0).to_numpy())
    nan = np.full(n, np.nan)
    parts = []
    stale = np.flatnonzero(last_pos > r.no_recent_activity_days)
    never = np.flatnonzero(np.isnan(last_pos))
    for idx, code in ((stale, "no_recent_activity"), (never, "no_activity")):
        parts.append((idx, code, -r.no_recent_activity_strength, last_pos[idx], nan[idx]))

    def col(name: str) -> np.ndarray:
        values: np.ndarray = feats[name].to_numpy(dtype=float)
        return values

    seg_rules = (
        (
            "at_risk",
            "overdue_vs_rhythm",
            r.overdue_vs_rhythm_strength,
            "days_since_won",
            "median_gap",
        ),
        ("difficult", "problems_reported", -r.problems_reported_strength, None, "issues"),
        ("key", "frequent_buyer", r.frequent_buyer_strength, "days_since_won", "won_window"),
        ("fan", "fan_activity", r.fan_activity_strength, None, "fan_events"),
    )
    seg_code, seg_names = pd.factorize(np.asarray(segment, dtype=object))
    for seg, code, strength, days, count in seg_rules:
        hit = np.flatnonzero(np.asarray(seg_names, dtype=object) == seg)
        idx = np.flatnonzero(seg_code == hit[0]) if len(hit) else np.zeros(0, dtype=np.int64)
        day_values = nan[idx] if days is None else col(days)[idx]
        parts.append((idx, code, strength, day_values, col(count)[idx]))
    return parts


def _strongest_order(cidx: np.ndarray, code_rank: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """The stable order by cidx, then strength descending, then code_rank, as
    np.lexsort((code_rank, -strength, cidx)) gives it (NaN last, -0.0 equal to 0.0): one stable
    sort of an integer key."""
    if len(cidx) == 0:
        return np.zeros(0, dtype=np.int64)
    strength = strength + 0.0  # -0.0 becomes 0.0
    order = _packed_order(cidx, code_rank, strength)
    if order is not None:
        return order
    values, distinct = pd.factorize(strength)
    by_value = np.argsort(-distinct, kind="stable")
    rank_of = np.empty(len(distinct) + 1, dtype=np.int64)
    rank_of[by_value] = np.arange(len(distinct))
    rank_of[-1] = len(distinct)  # NaN
    rank = rank_of[values]
    n_codes = int(code_rank.max()) + 1
    n_ranks = len(distinct) + 1
    if (int(cidx.max()) + 1) * n_ranks * n_codes >= 2**62:  # too wide for one key
        return np.lexsort((code_rank, -strength, cidx))
    key = (cidx.astype(np.int64) * n_ranks + rank) * n_codes + code_rank
    return np.argsort(key, kind="stable")


def _packed_order(
    cidx: np.ndarray, code_rank: np.ndarray, strength: np.ndarray
) -> np.ndarray | None:
    """_strongest_order with the strength in the key as the leading bits of its float (in the
    bits cidx and code_rank leave free), or None when strengths are not all finite and >= 0.
    The contacts with two strengths that differ only in the bits left out are sorted again."""
    c_bits = int(cidx.max()).bit_length()
    r_bits = int(code_rank.max()).bit_length()
    s_bits = 63 - c_bits - r_bits
    if s_bits < 16 or cidx.min() < 0 or code_rank.min() < 0:
        return None
    if not (np.isfinite(strength).all() and (strength >= 0).all()):
        return None
    # a float >= 0 orders as its bits do
    kept = strength.view(np.int64) >> (63 - s_bits)
    key = cidx.astype(np.int64) << s_bits
    key |= (1 << s_bits) - 1 - kept
    key <<= r_bits
    key |= code_rank
    order = np.argsort(key, kind="stable")
    head = key[order] >> r_bits
    ordered = strength[order]
    clash = np.flatnonzero((head[1:] == head[:-1]) & (ordered[1:] != ordered[:-1]))
    if len(clash):
        # those contacts' rows, in place (each contact's rows are together), in the exact order
        by_contact = cidx[order]
        contact = np.cumsum(np.r_[False, by_contact[1:] != by_contact[:-1]])
        redo = np.zeros(int(contact[-1]) + 1, dtype=bool)
        redo[contact[clash]] = True
        at = np.flatnonzero(redo[contact])
        rows = np.sort(order[at])
        order[at] = rows[np.lexsort((code_rank[rows], -strength[rows], cidx[rows]))]
    return order


def _text_ranks(names: np.ndarray) -> np.ndarray:
    """The position of each name in text order."""
    by_text = np.empty(len(names), dtype=np.int64)
    by_text[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    return by_text


def strongest_first(allr: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by cidx, then `abs` descending, then code (ties kept in order), with each
    row's `rank` within its contact: one sort on numbers (codes ranked as text once)."""
    code, names = text_codes(allr["code"])
    cidx = allr["cidx"].to_numpy(dtype="int64")
    order = _strongest_order(cidx, _text_ranks(names)[code], allr["abs"].to_numpy(dtype=float))
    out = allr.take(order)
    out["rank"] = _ranks(cidx[order])
    return out


def _ranks(cidx: np.ndarray) -> np.ndarray:
    """Each row's position within its run of equal cidx (rows sorted by cidx)."""
    starts, sizes = group_starts(cidx)
    ranks: np.ndarray = np.arange(len(cidx)) - np.repeat(starts, sizes)
    return ranks


def reasons(
    prep: Prepared,
    ev: pd.DataFrame,
    feats: pd.DataFrame,
    segment: np.ndarray,
    config: ScoringConfig,
    locale: str,
) -> pd.DataFrame:
    """Per contact (aligned with prep.contacts): reason_codes (all, strongest first) and reasons
    (top_n rendered texts joined by "; ").

    Codes are integers throughout: the rows are ordered by one integer sort, a text is rendered
    once per distinct (code, days, count) and each distinct list of codes or texts is joined
    once (scoring/joined.py).
    """
    n = len(prep.contacts)
    ev_code, ev_names = text_codes(ev["code"])
    names = [str(v) for v in ev_names]
    number = {name: i for i, name in enumerate(names)}
    cidx_parts = [ev["cidx"].to_numpy(dtype=np.int64)]
    code_parts = [ev_code.astype(np.int64)]
    strength_parts = [ev["strength"].to_numpy(dtype=float)]
    days_parts = [ev["days"].to_numpy(dtype=float)]
    count_parts = [ev["count"].to_numpy(dtype=float)]
    for idx, code, strength, days, count in _extra_reasons(prep, feats, segment, config):
        if code not in number:
            number[code] = len(names)
            names.append(code)
        cidx_parts.append(idx.astype(np.int64))
        code_parts.append(np.full(len(idx), number[code], dtype=np.int64))
        strength_parts.append(np.full(len(idx), strength, dtype=float))
        days_parts.append(days)
        count_parts.append(count)
    strength = np.abs(np.concatenate(strength_parts))
    keep = strength >= config.reasons.min_strength  # what is left to show
    cidx = np.concatenate(cidx_parts)[keep]
    code = np.concatenate(code_parts)[keep]
    if (code < 0).any():
        raise ValueError("evidence with a missing reason code")
    labels = np.asarray(names, dtype=object)
    order = _strongest_order(cidx, _text_ranks(labels)[code], strength[keep])
    cidx, code = cidx[order], code[order]
    codes = join_per_group(cidx, code, labels, ",", n)

    top = _ranks(cidx) < config.reasons.top_n
    rows = np.flatnonzero(keep)[order[top]]
    days = np.concatenate(days_parts)[rows]
    count = np.concatenate(count_parts)[rows]
    code, cidx = code[top], cidx[top]
    # one text per distinct (code, days, count); NaN and -0.0 render as their equals do
    day_id, _ = pd.factorize(days)
    count_id, _ = pd.factorize(count)
    combo, _ = pd.factorize(
        (code * (day_id.max(initial=0) + 2) + day_id + 1) * (count_id.max(initial=0) + 2)
        + count_id
        + 1
    )
    first = first_of_codes(combo)
    levels = (config.reasons.chance_medium, config.reasons.chance_high)
    rendered = render_reasons(
        pd.Series(labels[code[first]], dtype=object),
        pd.Series(days[first]),
        pd.Series(count[first]),
        locale,
        levels,
    )
    texts = rendered.astype(str).to_numpy(dtype=object)
    out = join_per_group(cidx, combo, texts, "; ", n)
    return pd.DataFrame({"reason_codes": codes, "reasons": out})
