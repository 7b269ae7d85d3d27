"""Temperature: decayed evidence points per contact, mapped to a 0-100 score and a label.

Each activity's points (from its signal rule) decay by 0.5 ** (age_days / half_life). Decayed
points are summed per (contact, reason code) and bounded by the code's cap, so no amount of one
weak signal can add up to an urgent request. Repeated unanswered calls add a flat penalty; open
deals add points by stage probability (late stage strongly) and the latest won deal adds a
decaying bonus. Customers (contacts with won deals) add a purchase-propensity term from their own
rhythm: frequency of repeat purchase days, recency and age (config.customers,
`customer_propensity`). Who the contact is adds profile points (config.profile: source, lifecycle
stage, VIP, do-not-contact, recency of the last inbound activity; these count in the points but
are not listed as reasons until the locales have texts for them; being a customer is shown as
purchased_recently). An activity's points may grow
with its duration (a rule's points_per_minute: time on site, call length).
score = 100 * (1 - exp(-max(base_points + points, 0) / saturation_points)), rounded
to a whole number (halves up) before the thresholds label it, so the label agrees with the number
a rep sees in the CRM.

`evidence(prep, config)` returns the long table (cidx, code, strength, days, count) that both the
score and the reasons are built from.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from scoring.codes import text_codes
from scoring.config import ScoringConfig
from scoring.features import Prepared
from scoring.groups import dense_groups, group_count, group_int_min, group_max, group_min, group_sum

EVIDENCE_COLUMNS = ["cidx", "code", "strength", "days", "count"]


def _activity_evidence(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    a = prep.activities
    n = len(prep.contacts)
    rule = a["rule"].to_numpy()
    has = rule >= 0
    names, code_of_rule = _rule_codes(config)
    k = len(names)
    key = a["cidx"].to_numpy()[has].astype("int64")
    key *= k
    key += code_of_rule[rule[has]]
    group, keys = dense_groups(key, n * k)
    size = len(keys)
    age = a["age"].to_numpy()[has]
    in_window = age <= config.reasons.count_window_days
    days = np.full(size, np.iinfo(age.dtype).max, dtype=age.dtype)
    np.minimum.at(days, group, age)
    g = pd.DataFrame(
        {
            "cidx": keys // k,
            "code": names[keys % k],
            "strength": group_sum(group, a["contrib"].to_numpy()[has], size),
            "days": days.astype("int64"),
            "count": group_count(group[in_window], size),
        }
    )
    caps: dict[str, float] = {}
    for r in config.signals:
        if r.cap is not None:
            caps[r.code] = max(caps.get(r.code, 0.0), r.cap)
    cap = np.array([caps.get(c, np.inf) for c in names], dtype=float)[keys % k]
    g["strength"] = np.clip(g["strength"].to_numpy(), -cap, cap)
    return g


def _rule_codes(config: ScoringConfig) -> tuple[np.ndarray, np.ndarray]:
    """The distinct reason codes of the signal rules, and each rule's position among them."""
    codes, names = pd.factorize(pd.Series([r.code for r in config.signals], dtype=object))
    return np.asarray(names, dtype=object), np.asarray(codes, dtype="int64")


def unanswered_penalty(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    p = config.unanswered_penalty
    a = prep.activities
    m = (
        (a["type"] == "call")
        & (a["direction"] != "inbound")
        & a["outcome"].isin(p.outcomes)
        & (a["age"] <= p.window_days)
    )
    g = (
        a.loc[m.to_numpy(), ["cidx", "age"]]
        .groupby("cidx")
        .agg(days=("age", "min"), count=("age", "size"))
        .reset_index()
    )
    g = g[g["count"] >= p.min_calls]
    return g.assign(code=p.code, strength=float(p.points))[EVIDENCE_COLUMNS]


def _deal_evidence(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    dc = config.deals
    d = prep.deals
    hl = config.half_life_days
    frames = []

    opened = d[d["status"] == "open"]
    if len(opened):
        prob = opened["stage_probability"]
        late = prob >= dc.late_stage_probability
        base = np.where(
            prob.isna(),
            dc.open_unknown_probability_points,
            np.where(late, dc.late_stage_points, prob.fillna(0) * dc.open_points_per_probability),
        )
        age = opened["created_age"].clip(lower=0).to_numpy(dtype=float)
        o = pd.DataFrame(
            {
                "cidx": opened["cidx"].to_numpy(),
                "code": np.where(late, "late_stage_deal", "open_deal"),
                "strength": base * np.power(0.5, age / hl[dc.open_signal_class]),
                "days": age,
                "count": (prob.fillna(0) * 100).round().to_numpy(),
            }
        )
        # the strongest open deal speaks for the contact; several open deals do not stack
        o = o.sort_values(["cidx", "strength"], ascending=[True, False], kind="stable")
        frames.append(o.drop_duplicates("cidx"))

    won = d[d["status"] == "won"]
    if len(won) and dc.won_recent_points:
        won_age = won["closed_age"].clip(lower=0)
        w = pd.DataFrame(
            {
                "cidx": won["cidx"].to_numpy(),
                "age": won_age.to_numpy(dtype=float),
                "recent": (won_age <= config.reasons.count_window_days).to_numpy().astype("int64"),
            }
        )
        w = w.groupby("cidx").agg(days=("age", "min"), count=("recent", "sum")).reset_index()
        w["strength"] = dc.won_recent_points * np.power(0.5, w["days"] / hl[dc.won_signal_class])
        frames.append(w.assign(code="purchased_recently"))

    if not frames:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    return pd.concat([f[EVIDENCE_COLUMNS] for f in frames], ignore_index=True)


def purchase_history(prep: Prepared) -> pd.DataFrame:
    """Per contact with won deals (indexed by cidx): purchase days, repeats x, age T and recency
    in days, and spend per purchase day (NaN when no amounts are known)."""
    won = prep.deals[prep.deals["status"] == "won"]
    if not len(won):
        cols = ["days", "x", "T", "recency", "value"]
        empty = {c: pd.Series(dtype=float) for c in cols}
        return pd.DataFrame(empty, index=pd.Index([], name="cidx"))
    per_day = won.groupby(["cidx", "closed_date"], sort=False)["amount"].sum(min_count=1)
    per_day = per_day.reset_index()
    age = (prep.as_of_date - per_day["closed_date"]).dt.days.clip(lower=0)
    h = (
        per_day.assign(age=age)
        .groupby("cidx")
        .agg(
            days=("age", "size"),
            T=("age", "max"),
            recency=("age", "min"),
            value=("amount", "mean"),
        )
    )
    h["x"] = h["days"] - 1
    return h.astype(float)


def customer_propensity(history: pd.DataFrame, config: ScoringConfig) -> pd.DataFrame:
    """Chance of a purchase within config.customers.horizon_days (`p`), the spend factor and the
    points, per row of `history` (see defaults.yaml, `customers`)."""
    c = config.customers
    x, t, r = (history[k].to_numpy(dtype=float) for k in ("x", "T", "recency"))
    rate = (x + c.prior_repeats) / (t + c.prior_days)
    stay = c.stay_probability * np.exp(-rate * r)
    alive = stay / (stay + 1.0 - c.stay_probability)
    p = 1.0 - np.exp(-rate * c.horizon_days * alive)
    factor = np.ones(len(history))
    if c.value_reference is not None and c.value_exponent > 0:
        value = np.clip(history["value"].to_numpy(dtype=float), 0.0, None)
        with np.errstate(divide="ignore"):
            f = np.power(value / c.value_reference, c.value_exponent)
        vmax = c.value_factor_max
        factor = np.where(np.isnan(f), 1.0, np.clip(f, 1.0 / vmax, vmax))
    return pd.DataFrame(
        {"p": p, "factor": factor, "points": c.points * p * factor}, index=history.index
    )


def _customer_evidence(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    h = purchase_history(prep)
    if not len(h) or config.customers.points == 0:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    prop = customer_propensity(h, config)
    return pd.DataFrame(
        {
            "cidx": h.index.to_numpy(dtype="int64"),
            "code": config.customers.code,
            "strength": prop["points"].to_numpy(),
            "days": h["recency"].to_numpy(),
            "count": np.round(100 * prop["p"].to_numpy()),
        }
    )


# profile terms shown as reasons, under an existing reason code
PROFILE_REASON = {"customer": "purchased_recently"}
# profile terms that count in the points but are not listed as reasons (no reason texts yet)
PROFILE_UNSHOWN = ("source", "lifecycle_stage", "vip", "do_not_contact", "last_inbound", "touches")


def profile_terms(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    """Per contact (aligned with prep.contacts) the points of each profile term (config.profile):
    source, lifecycle_stage, vip, do_not_contact, customer (a won deal by then; `customer_days`
    since the last) and last_inbound (points decaying by the days since their last inbound
    activity; `last_inbound_days`, NaN when there was none, and `last_inbound_recency`, the decay
    factor 0-1), and touches (points per touch in the touches window; `touch_count`)."""
    held = prep.memo.get("profile_terms")
    if held is None or held[0] is not config:  # computed once per (run, config)
        held = prep.memo["profile_terms"] = (config, _profile_terms(prep, config))
    return held[1].copy()


def _profile_terms(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    pc = config.profile
    c = prep.contacts
    n = len(c)
    a = prep.activities
    # a signal (a rule matched, so a reason code) that came in
    inbound = (a["direction"] == "inbound").to_numpy() & (a["rule"].to_numpy() >= 0)
    cidx = a["cidx"].to_numpy()
    last = group_int_min(cidx[inbound], a["age"].to_numpy()[inbound], n)
    hl = config.half_life_days[pc.last_inbound_class]
    recent = np.where(np.isnan(last), 0.0, np.power(0.5, np.clip(last, 0, None) / hl))
    touched = (a["is_touch"] & (a["age"] <= config.touches.window_days)).to_numpy()
    touches = group_count(cidx[touched], n).astype(float)
    won = prep.deals[prep.deals["status"] == "won"]
    bought = won.groupby("cidx")["closed_age"].min().reindex(pd.RangeIndex(n))
    bought_days = bought.clip(lower=0).to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "source": c["source"].map(pc.source).fillna(0.0).to_numpy(dtype=float),
            "lifecycle_stage": c["lifecycle_stage"]
            .map(pc.lifecycle_stage)
            .fillna(0.0)
            .to_numpy(dtype=float),
            "vip": np.where(c["is_vip"].to_numpy(dtype=bool), pc.vip, 0.0),
            "do_not_contact": np.where(
                c["do_not_contact"].to_numpy(dtype=bool), pc.do_not_contact, 0.0
            ),
            "customer": np.where(np.isnan(bought_days), 0.0, pc.customer),
            "customer_days": bought_days,
            "last_inbound": pc.last_inbound_points * recent,
            "last_inbound_days": last,
            "last_inbound_recency": recent,
            "touches": pc.touch_points * touches,
            "touch_count": touches,
        }
    )


def _profile_evidence(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    terms = profile_terms(prep, config)
    frames = []
    for code in PROFILE_REASON:
        strength = terms[code].to_numpy()
        idx = np.flatnonzero(strength != 0)
        if not len(idx):
            continue
        days = (
            terms[f"{code}_days"].to_numpy()[idx]
            if f"{code}_days" in terms
            else np.full(len(idx), np.nan)
        )
        frames.append(
            pd.DataFrame(
                {
                    "cidx": idx,
                    "code": PROFILE_REASON.get(code, code),
                    "strength": strength[idx],
                    "days": days,
                    "count": 0.0,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def profile_points(prep: Prepared, config: ScoringConfig) -> np.ndarray:
    """Per contact: the points of the profile terms that are not reasons (PROFILE_UNSHOWN)."""
    terms = profile_terms(prep, config)
    return np.asarray(terms[list(PROFILE_UNSHOWN)].sum(axis=1), dtype=float)


def evidence(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    """Long table of signed evidence per (cidx, code): strength in points, days since the most
    recent event of that code, and a count (events in the reasons' count window; for deals the
    probability in percent)."""
    kinds = (
        _activity_evidence,
        unanswered_penalty,
        _deal_evidence,
        _customer_evidence,
        _profile_evidence,
    )
    # the kinds of evidence read the prepared tables and nothing of each other: worked out side
    # by side (numpy group reductions, which let go of the GIL), kept in this order
    with ThreadPoolExecutor(2, thread_name_prefix="heatsync-evidence") as pool:
        parts = list(pool.map(lambda kind: kind(prep, config), kinds))
    parts = [p[EVIDENCE_COLUMNS] for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(
            {
                "cidx": pd.Series(dtype="int64"),
                "code": pd.Series(dtype="object"),
                "strength": pd.Series(dtype=float),
                "days": pd.Series(dtype=float),
                "count": pd.Series(dtype=float),
            }
        )
    ev = pd.concat(parts, ignore_index=True)
    # the penalty shares its code with per-call negatives: merge them into one row
    codes, names = text_codes(ev["code"])
    k = max(len(names), 1)
    cidx = ev["cidx"].to_numpy(dtype="int64")
    group, keys = dense_groups(cidx * k + codes, len(prep.contacts) * k)
    size = len(keys)
    return pd.DataFrame(
        {
            "cidx": keys // k,
            "code": np.asarray(names, dtype=object)[keys % k],
            "strength": group_sum(group, ev["strength"].to_numpy(dtype=float), size),
            "days": group_min(group, ev["days"].to_numpy(dtype=float), size),
            "count": group_max(group, ev["count"].to_numpy(dtype=float), size),
        }
    )


def round_score(raw: np.ndarray) -> np.ndarray:
    """Whole numbers, halves up (69.5 -> 70): the score as the CRM shows it, and as it is banded."""
    return np.floor(np.asarray(raw, dtype=float) + 0.5)


def score_points(points: np.ndarray, config: ScoringConfig) -> np.ndarray:
    """Map raw points to 0-100 with a saturating curve, rounded to a whole number."""
    t = config.temperature
    total = np.clip(np.asarray(points, dtype=float) + t.base_points, 0, None)
    return round_score(100.0 * (1.0 - np.exp(-total / t.saturation_points)))


def label(score: np.ndarray, config: ScoringConfig) -> np.ndarray:
    t = config.temperature
    return np.select([score >= t.hot, score >= t.warm], ["hot", "warm"], default="cold")


def temperature(prep: Prepared, ev: pd.DataFrame, config: ScoringConfig) -> pd.DataFrame:
    """Per contact (indexed by cidx): points, score, temperature."""
    n = len(prep.contacts)
    points = np.bincount(
        ev["cidx"].to_numpy(dtype="int64"), weights=ev["strength"].to_numpy(float), minlength=n
    )[:n] + profile_points(prep, config)
    score = score_points(points, config)
    return pd.DataFrame({"points": points, "score": score, "temperature": label(score, config)})
