"""Segments (domain.md §2) by priority, all thresholds in config.segments:

difficult > at_risk > key > burning > fan > loyal > new, else no segment (None).

- difficult: has won deals and >= difficult_min_issues complaints, late payments or refunds
  in the window;
- at_risk: >= at_risk_min_won won deals, days since the last > at_risk_factor x the contact's own
  median gap between purchase days, and not purchased within at_risk_recent_purchase_days;
- key: >= key_min_won won deals in the window, or window won amount in the portal's top share with
  >= key_top_min_won deals;
- burning: created <= burning_max_age_days ago, an intent-class signal within burning_intent_days,
  no won deal;
- fan: >= fan_min_events event/social/referral activities in the window and <= fan_max_won wins;
- loyal: >= loyal_min_events engagement events (not outbound) in the window and no won deal;
- new: created <= new_days ago.
A contact matching none of them (an old lead, a one-time buyer) has no segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.config import ScoringConfig
from scoring.features import Prepared


def _count(prep: Prepared, mask: pd.Series) -> np.ndarray:
    n = len(prep.contacts)
    return np.bincount(prep.activities.loc[mask, "cidx"].to_numpy(dtype="int64"), minlength=n)[:n]


def segment_features(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    """Per contact (indexed by cidx) counts and purchase rhythm used by the segment rules."""
    s = config.segments
    n = len(prep.contacts)
    a = prep.activities
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["issues"] = _count(
        prep, a["type"].isin(s.difficult_issue_types) & (a["age"] <= s.difficult_window_days)
    )
    out["fan_events"] = _count(prep, a["type"].isin(s.fan_types) & (a["age"] <= s.fan_window_days))
    out["engagement"] = _count(
        prep,
        a["type"].isin(s.loyal_types)
        & (a["direction"] != "outbound")
        & (a["age"] <= s.loyal_window_days),
    )
    out["intent_recent"] = _count(
        prep, (a["signal_class"] == "intent") & (a["age"] <= s.burning_intent_days)
    )

    d = prep.deals
    won = d[d["status"] == "won"]
    cidx = won["cidx"].to_numpy(dtype="int64")
    out["won_total"] = np.bincount(cidx, minlength=n)[:n]
    in_key = (won["closed_age"] <= s.key_window_days).to_numpy()
    out["won_window"] = np.bincount(cidx[in_key], minlength=n)[:n]
    out["won_amount_window"] = np.bincount(
        cidx[in_key], weights=won["amount"].fillna(0).to_numpy()[in_key], minlength=n
    )[:n]
    last = won.groupby("cidx")["closed_age"].min()
    out["days_since_won"] = last.reindex(out.index).to_numpy(dtype=float)

    # the contact's own rhythm: median gap between distinct purchase days
    days = won[["cidx", "closed_date"]].drop_duplicates().sort_values(["cidx", "closed_date"])
    gaps = days.groupby("cidx")["closed_date"].diff().dt.days
    median_gap = gaps.groupby(days["cidx"]).median()
    out["median_gap"] = median_gap.reindex(out.index).to_numpy(dtype=float)
    return out


def assign_segments(prep: Prepared, feats: pd.DataFrame, config: ScoringConfig) -> np.ndarray:
    """Segment label per contact (aligned with prep.contacts), None where no rule matches."""
    s = config.segments
    f = feats
    portal = prep.contacts["portal"].to_numpy()
    amount = f["won_amount_window"].where(f["won_amount_window"] > 0)
    top = pd.Series(portal).map(amount.groupby(portal).quantile(s.key_top_quantile))
    created_age = prep.contacts["created_age"]

    difficult = (f["won_total"] > 0) & (f["issues"] >= s.difficult_min_issues)
    at_risk = (
        (f["won_total"] >= s.at_risk_min_won)
        & (f["days_since_won"] > s.at_risk_factor * f["median_gap"])
        & (f["days_since_won"] > s.at_risk_recent_purchase_days)
    )
    key = (f["won_window"] >= s.key_min_won) | (
        (amount >= top) & (f["won_window"] >= s.key_top_min_won)
    )
    burning = (
        (created_age <= s.burning_max_age_days) & (f["intent_recent"] > 0) & (f["won_total"] == 0)
    )
    fan = (f["fan_events"] >= s.fan_min_events) & (f["won_total"] <= s.fan_max_won)
    loyal = (f["engagement"] >= s.loyal_min_events) & (f["won_total"] == 0)
    new = created_age <= s.new_days
    return np.select(
        [
            m.fillna(False).to_numpy(dtype=bool)
            for m in (difficult, at_risk, key, burning, fan, loyal, new)
        ],
        ["difficult", "at_risk", "key", "burning", "fan", "loyal", "new"],
        default=np.array(None, dtype=object),
    )
