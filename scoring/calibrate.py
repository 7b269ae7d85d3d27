"""calibrate: learn the scoring weights from a portal's own history, without peeking ahead.

`calibrate(contacts, activities, deals, as_of, horizon_days, config=None, split_days=None)`:

1. Everything after `as_of` is dropped first, so later events can never matter.
2. The cut is `as_of - split_days` (default `horizon_days`). Features are computed as of the cut by
   the same code that scores (`prepare` + `evidence`: one decayed, capped strength per reason
   code and contact); the outcome is a won deal closed in (cut, as_of]. Nothing after the cut
   reaches the features (`calibration_data` returns both; tests check it).
3. Customers: the purchase-propensity parameters (config.customers: prior repeats, prior days,
   stay probability, spend exponent) are chosen on a small grid by the ROC AUC of the customer
   term among contacts with purchases; `value_reference` becomes the median spend per purchase
   day at the cut, and `horizon_days` the requested horizon.
4. Weights: a logistic regression (Newton/IRLS in numpy) of the outcome on the strengths, with
   every code's slope shrunk towards one shared slope (ridge on the differences). Each code's
   points are multiplied by its slope over the reference slope (the mean absolute slope, weighted
   by how many contacts have the code), bounded to [0, MAX_MULTIPLIER]; codes seen on fewer than
   MIN_NONZERO contacts keep their hand-set points.
5. Mapping: `temperature.saturation_points` is set so that score / 100 tracks the fitted chance
   of converting within the split window; the hot/warm thresholds stay as configured.

Returns a ScoringConfig that `score_contacts` uses as is and that round-trips through
`config.model_dump()` -> YAML -> `load_config`. Pure; no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.backtest import outcomes, roc_auc
from scoring.config import ScoringConfig, load_config
from scoring.features import prepare, to_utc
from scoring.temperature import customer_propensity, evidence, purchase_history

MAX_MULTIPLIER = 5.0
MIN_NONZERO = 20  # a code needs this many contacts with evidence to get its own slope
RIDGE = 10.0  # pull of each code's slope towards the shared one (standardized units)

# grid for the customer term (step 3)
PRIOR_REPEATS = (0.5, 1.0, 2.0)
PRIOR_DAYS = (60.0, 120.0, 240.0, 480.0)
STAY = (0.2, 0.35, 0.5, 0.65, 0.8)
VALUE_EXPONENTS = (0.0, 0.1, 0.2, 0.3)


@dataclass(frozen=True)
class CalibrationData:
    """Features as of `cut` (one column per reason code, points) and outcomes in (cut, as_of]."""

    cut: pd.Timestamp
    as_of: pd.Timestamp
    features: pd.DataFrame  # index = contact position at the cut, columns = reason codes
    outcome: np.ndarray  # bool per row of features
    history: pd.DataFrame  # purchase_history at the cut (customers only)


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


def calibration_data(
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp | str,
    window_days: int,
    config: ScoringConfig,
    tz: str = "UTC",
) -> CalibrationData:
    """Features as of as_of - window_days and outcomes up to as_of (see the module docstring)."""
    end = to_utc(as_of)
    cut = end - pd.Timedelta(days=window_days)
    c, a, d = _until(contacts, activities, deals, end)
    prep = prepare(c, a, d, cut, config, tz)
    ev = evidence(prep, config)
    n = len(prep.contacts)
    x = ev.pivot_table(index="cidx", columns="code", values="strength", aggfunc="sum")
    x = x.reindex(pd.RangeIndex(n)).fillna(0.0)
    y = outcomes(prep.contacts, d, cut, window_days)
    return CalibrationData(
        cut=cut, as_of=end, features=x, outcome=y, history=purchase_history(prep)
    )


def fit_logistic(
    x: np.ndarray, y: np.ndarray, penalty: np.ndarray, iterations: int = 50
) -> np.ndarray:
    """Penalized logistic regression by Newton/IRLS; x includes the intercept column.
    `penalty` is the ridge weight per coefficient (0 = unpenalized)."""
    w = np.zeros(x.shape[1])
    lam = np.diag(penalty.astype(float)) + 1e-9 * np.eye(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (y - p) - lam @ w
        hess = x.T @ (x * (p * (1 - p))[:, None]) + lam
        step = np.linalg.solve(hess, grad)
        w = w + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def _fit_customers(data: CalibrationData, config: ScoringConfig, horizon_days: int) -> dict:
    """Customer-term parameters with the best AUC among customers at the cut."""
    base = config.customers.model_dump()
    h = data.history
    y = data.outcome[h.index.to_numpy(dtype="int64")] if len(h) else np.array([], bool)
    spend = h["value"].where(h["value"] > 0).median() if len(h) else np.nan
    reference = float(spend) if spend == spend else None
    best = {**base, "horizon_days": float(horizon_days), "value_reference": reference}
    if len(h) < MIN_NONZERO or y.all() or not y.any():
        return best
    best_auc = -1.0
    for a, b, s, e in itertools.product(PRIOR_REPEATS, PRIOR_DAYS, STAY, VALUE_EXPONENTS):
        trial = {
            **best,
            "prior_repeats": a,
            "prior_days": b,
            "stay_probability": s,
            "value_exponent": e if reference is not None else base["value_exponent"],
        }
        cfg = config.model_copy(update={"customers": config.customers.model_validate(trial)})
        auc = roc_auc(customer_propensity(h, cfg)["points"].to_numpy(), y) or 0.0
        if auc > best_auc + 1e-6:  # ties keep the earlier (simpler) grid point
            best, best_auc = trial, auc
    return best


def _scaled_rules(config: ScoringConfig, mult: dict[str, float]) -> dict[str, Any]:
    """Config fields with every code's points multiplied by mult[code] (missing: 1)."""
    data = config.model_dump()
    for rule in data["signals"]:
        m = mult.get(rule["code"], 1.0)
        rule["points"] = float(rule["points"]) * m
        if rule["cap"] is not None and m > 0:
            rule["cap"] = float(rule["cap"]) * m
    up = data["unanswered_penalty"]
    up["points"] = float(up["points"]) * mult.get(up["code"], 1.0)
    dl = data["deals"]
    dl["late_stage_points"] *= mult.get("late_stage_deal", 1.0)
    dl["open_points_per_probability"] *= mult.get("open_deal", 1.0)
    dl["open_unknown_probability_points"] *= mult.get("open_deal", 1.0)
    dl["won_recent_points"] *= mult.get("purchased_recently", 1.0)
    data["customers"]["points"] *= mult.get(data["customers"]["code"], 1.0)
    return data


def _saturation(points: np.ndarray, fitted: np.ndarray, current: float) -> float:
    """saturation_points minimizing the squared gap between 1 - e^(-points/s) and `fitted`."""
    grid = current * np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    pts = np.clip(points, 0, None)[:, None]
    err = ((1.0 - np.exp(-pts / grid[None, :]) - fitted[:, None]) ** 2).mean(axis=0)
    return float(grid[int(np.argmin(err))])


def calibrate(
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    config: ScoringConfig | None = None,
    split_days: int | None = None,
    tz: str = "UTC",
) -> ScoringConfig:
    """A config fitted to this history as of `as_of` for outcomes within `horizon_days`.

    Features as of as_of - (split_days or horizon_days), outcomes up to as_of; nothing after
    as_of is read. With no conversions (or no non-conversions) in the window the weights are
    left as they are (only the customer horizon and spend reference are set).
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    window = int(split_days) if split_days is not None else int(horizon_days)
    if window <= 0:
        raise ValueError(f"split_days must be > 0, got {split_days}")
    config = config if config is not None else load_config(None)
    data = calibration_data(contacts, activities, deals, as_of, window, config, tz)
    customers = _fit_customers(data, config, horizon_days)
    config = ScoringConfig.model_validate({**config.model_dump(), "customers": customers})
    # the features again, now with the fitted customer term
    data = calibration_data(contacts, activities, deals, as_of, window, config, tz)
    x = data.features
    y = data.outcome.astype(float)
    if len(x) == 0 or y.sum() == 0 or y.sum() == len(y):
        return config

    nonzero = (x != 0).sum()
    own = [c for c in x.columns if nonzero[c] >= MIN_NONZERO]
    total = x.sum(axis=1).to_numpy()
    sd_total = total.std() or 1.0
    cols = [np.ones(len(x)), total / sd_total]
    sds = []
    for c in own:
        sd = x[c].std() or 1.0
        sds.append(sd)
        cols.append(x[c].to_numpy() / sd)
    design = np.column_stack(cols)
    penalty = np.r_[0.0, 0.0, np.full(len(own), RIDGE)]
    w = fit_logistic(design, y, penalty)
    shared = w[1] / sd_total
    slopes = np.array([shared + w[2 + i] / sds[i] for i in range(len(own))])  # log-odds / point
    weight = np.array([nonzero[c] for c in own], dtype=float)
    # the reference slope: what one point is worth on average here (the unit of the new points)
    reference = float(np.sum(np.abs(slopes) * weight) / weight.sum()) if len(own) else shared
    if not reference > 0:
        return config  # points do not rank conversions here: keep the hand-set weights
    mult = {
        c: float(np.clip(slopes[i] / reference, 0.0, MAX_MULTIPLIER)) for i, c in enumerate(own)
    }
    data_dict = _scaled_rules(config, mult)
    scaled_points = sum(x[c].to_numpy() * mult.get(c, 1.0) for c in x.columns)
    fitted = 1.0 / (1.0 + np.exp(-(design @ w)))
    data_dict["temperature"]["saturation_points"] = _saturation(
        np.asarray(scaled_points, dtype=float), fitted, config.temperature.saturation_points
    )
    return ScoringConfig.model_validate(data_dict)
