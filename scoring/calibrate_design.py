"""The data scoring.calibrate learns from: the tables as known at as_of, one column per term.

`calibration_data` computes the features as of a cut with the scoring code itself (`prepare`) and
the outcomes in (cut, cut + window]; `design` values one column per term of the points config
(steps 2 and 5 of the `scoring.calibrate` docstring). Re-exported by `scoring.calibrate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scoring.backtest import outcomes
from scoring.config import ScoringConfig
from scoring.features import Prepared, prepare, to_utc
from scoring.temperature import (
    _customer_evidence,
    _deal_evidence,
    profile_terms,
    purchase_history,
    unanswered_penalty,
)

SCALED = ("late_stage_deal", "open_deal", "purchased_recently")


@dataclass(frozen=True)
class CalibrationData:
    """Features as of `cut` (one column per term, see `design`) and outcomes in (cut, as_of]."""

    cut: pd.Timestamp
    as_of: pd.Timestamp
    features: pd.DataFrame  # index = contact position at the cut, columns = terms
    outcome: np.ndarray  # bool per row of features
    history: pd.DataFrame  # purchase_history at the cut (customers only)
    prep: Prepared | None = field(default=None, repr=False)


def _until(
    contacts: pd.DataFrame, activities: pd.DataFrame, deals: pd.DataFrame, as_of: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The tables as they were known at as_of: later contacts, activities and deals removed and a
    deal closed after as_of reopened (its close is not known yet)."""
    c = contacts
    if "created_at" in c.columns:
        created = pd.to_datetime(c["created_at"], utc=True)
        c = c[created.isna() | (created <= as_of)]
    a = activities
    if "occurred_at" in a.columns:
        a = a[pd.to_datetime(a["occurred_at"], utc=True) <= as_of]
    d = deals.copy()
    if len(d):
        created = pd.to_datetime(d["created_at"], utc=True) if "created_at" in d else None
        closed = pd.to_datetime(d["closed_at"], utc=True) if "closed_at" in d else None
        if created is not None:
            keep = created.isna() | (created <= as_of)
            if closed is not None:
                keep &= created.notna() | closed.isna() | (closed <= as_of)
            d = d[keep]
            closed = closed[keep] if closed is not None else None
        if closed is not None:
            later = closed > as_of
            d.loc[later, "status"] = "open"
            d.loc[later, "closed_at"] = pd.NaT
            if "stage_probability" in d:
                d.loc[later, "stage_probability"] = np.nan
    return c, a, d


def design(prep: Prepared, config: ScoringConfig) -> pd.DataFrame:
    """One column per term of the points config (rows aligned with prep.contacts), valued so that
    a contact's uncapped points are sum(term value * column); see the module docstring."""
    n = len(prep.contacts)
    cols: dict[str, np.ndarray] = {}
    a = prep.activities
    a = a[a["rule"] >= 0]
    if len(a):
        sums = (
            pd.DataFrame(
                {
                    "rule": a["rule"].to_numpy(),
                    "cidx": a["cidx"].to_numpy(),
                    "d": a["decay"].to_numpy(),
                    "dm": (a["decay"] * a["minutes"]).to_numpy(),
                }
            )
            .groupby(["rule", "cidx"], sort=True)[["d", "dm"]]
            .sum()
            .reset_index()
        )
        for rule, part in sums.groupby("rule", sort=True):
            idx = part["cidx"].to_numpy(dtype="int64")
            col = np.zeros(n)
            col[idx] = part["d"].to_numpy()
            cols[f"signals.{rule}.points"] = col
            if part["dm"].abs().sum() > 0:
                col = np.zeros(n)
                col[idx] = part["dm"].to_numpy()
                cols[f"signals.{rule}.points_per_minute"] = col
    pen = unanswered_penalty(prep, config)
    if len(pen):
        col = np.zeros(n)
        col[pen["cidx"].to_numpy(dtype="int64")] = 1.0
        cols["unanswered_penalty.points"] = col
    # the deal and customer terms alone (the profile's customer points share a reason code)
    ev = pd.concat([_deal_evidence(prep, config), _customer_evidence(prep, config)])
    for code in (*SCALED, config.customers.code):
        rows = ev[ev["code"] == code]
        if len(rows):
            col = np.zeros(n)
            col[rows["cidx"].to_numpy(dtype="int64")] = rows["strength"].to_numpy(dtype=float)
            cols[f"scale.{code}"] = col
    c = prep.contacts
    for key in ("source", "lifecycle_stage"):
        values = c[key]
        for value in sorted(values.dropna().unique()):
            cols[f"profile.{key}.{value}"] = (values == value).to_numpy(dtype=float)
    cols["profile.vip"] = c["is_vip"].to_numpy(dtype=float)
    cols["profile.do_not_contact"] = c["do_not_contact"].to_numpy(dtype=float)
    terms = profile_terms(prep, config)
    cols["profile.customer"] = terms["customer_days"].notna().to_numpy(dtype=float)
    cols["profile.last_inbound_points"] = terms["last_inbound_recency"].to_numpy(dtype=float)
    cols["profile.touch_points"] = terms["touch_count"].to_numpy(dtype=float)
    return pd.DataFrame(cols, index=pd.RangeIndex(n))


def calibration_data(
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp | str,
    window_days: int,
    config: ScoringConfig,
    tz: str = "UTC",
    cut: pd.Timestamp | None = None,
) -> CalibrationData:
    """Features as of `cut` (default as_of - window_days) from the tables as known at as_of, and
    outcomes in (cut, cut + window_days] (see the module docstring)."""
    end = to_utc(as_of)
    cut = cut if cut is not None else end - pd.Timedelta(days=window_days)
    c, a, d = _until(contacts, activities, deals, end)
    prep = prepare(c, a, d, cut, config, tz)
    x = design(prep, config)
    y = outcomes(prep.contacts, d, cut, window_days)
    return CalibrationData(
        cut=cut, as_of=end, features=x, outcome=y, history=purchase_history(prep), prep=prep
    )
