"""The fit of scoring.calibrate and its translation into the config's points.

The L2 logistic regression on standardized columns (`_fit_lr`), the log-odds → score mapping
(`_mapping`), the learned points written into a config (`_apply`), the customer term's grid
(`_fit_customers`) and each term's reason code (`_term_code`); steps 4, 6 and 7 of the
`scoring.calibrate` docstring. Re-exported by `scoring.calibrate`.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from scoring.backtest import roc_auc
from scoring.calibrate_design import CalibrationData
from scoring.config import ScoringConfig
from scoring.temperature import (
    customer_propensity,
)

MIN_NONZERO = 20  # a term needs this many contacts with evidence to be learned
# _mapping: score 0 at FLOOR x the base rate or MARGIN x the range below the lowest log-odds;
# the spreads tried (x the 99.5th percentile of the log-odds above score 0)
FLOOR, MARGIN = 0.01, 0.05
MAP_SPREADS = (0.05, 0.08, 0.12, 0.18, 0.25, 0.33, 0.5, 0.75, 1.0, 1.5, 2.0)

# grid for the customer term (step 4)
PRIOR_REPEATS = (0.5, 1.0, 2.0)
PRIOR_DAYS = (60.0, 120.0, 240.0, 480.0)
STAY = (0.2, 0.35, 0.5, 0.65, 0.8)
VALUE_EXPONENTS = (0.0, 0.1, 0.2, 0.3)


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression on standardized columns; coefficients and intercept in
    the columns' own units."""
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - scaler.mean_) / scale, y)
    w = model.coef_[0] / scale
    b = float(model.intercept_[0] - np.sum(model.coef_[0] * scaler.mean_ / scale))
    return w, b


def _mapping(logit: np.ndarray, base_rate: float) -> tuple[float, float]:
    """(offset, v) of score = 100 * (1 - e^(-max(logit - offset, 0) / v)).

    Score 0 is a fitted chance of FLOOR x the base rate (a contact below it practically never
    converts, e.g. a past buyer of a one-off product), or a little below the lowest fitted
    log-odds of the history if that is higher, so that nobody else floors at 0, also as the
    portal drifts. The spread v is the one of a grid that ties the fewest pairs of contacts
    (least sum of squared counts per whole-number score): the scores spread over the scale as
    evenly as the curve allows. Outcomes play no part."""
    if not len(logit):
        return 0.0, 1.0
    floor = FLOOR * base_rate
    lo, hi = float(np.min(logit)), float(np.max(logit))
    span = hi - lo if hi > lo else 1.0
    off = max(lo - MARGIN * span, float(np.log(floor / (1.0 - floor))))
    z = np.clip(logit - off, 0, None)
    top = float(np.quantile(z, 0.995)) or 1.0
    best = (np.inf, top / 3.0)
    for f in MAP_SPREADS:
        v = top * f
        score = np.floor(100.0 * (1.0 - np.exp(-z / v)) + 0.5)
        ties = float(np.sum(np.bincount(score.astype("int64"), minlength=101) ** 2.0))
        if ties < best[0] - 1e-9:
            best = (ties, v)
    return off, best[1]


def _apply(
    config: ScoringConfig, points: dict[str, float], base: float
) -> tuple[dict[str, Any], list[str]]:
    """The config with each learned term's points (see `design` for the term names)."""
    data = config.model_dump()
    notes: list[str] = []
    learned_codes: set[str] = set()
    for key in ("source", "lifecycle_stage"):
        if any(t.startswith(f"profile.{key}.") for t in points):
            # the learned levels replace the given ones (0 for a level not learned, written out
            # so that the YAML merged over the defaults reads back the same)
            data["profile"][key] = {k: 0.0 for k in data["profile"][key]}
    for term, value in points.items():
        parts = term.split(".", 2)
        if parts[0] == "signals":
            rule = data["signals"][int(parts[1])]
            rule[parts[2]] = float(value)
            learned_codes.add(rule["code"])
        elif term == "unanswered_penalty.points":
            if value > 0:
                notes.append("repeated unanswered calls predicted buying here; their penalty is 0")
            data["unanswered_penalty"]["points"] = float(min(value, 0.0))
        elif parts[0] == "scale":
            code = parts[1]
            m = float(value)
            if m < 0:
                notes.append(f"{code} predicted not buying here; its points are 0")
                m = 0.0
            dl = data["deals"]
            if code == "late_stage_deal":
                dl["late_stage_points"] *= m
            elif code == "open_deal":
                dl["open_points_per_probability"] *= m
                dl["open_unknown_probability_points"] *= m
            elif code == "purchased_recently":
                dl["won_recent_points"] *= m
            else:
                data["customers"]["points"] *= m
        elif parts[0] == "profile":
            if len(parts) == 3:
                data["profile"].setdefault(parts[1], {})[parts[2]] = float(value)
            else:
                data["profile"][parts[1]] = float(value)
    for rule in data["signals"]:
        if rule["code"] in learned_codes:
            rule["cap"] = None
    data["temperature"]["base_points"] = float(base)
    return data, notes


def _fit_customers(
    data: CalibrationData, config: ScoringConfig, horizon_days: int
) -> dict[str, Any]:
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


def _term_code(term: str, config: ScoringConfig) -> str:
    parts = term.split(".", 2)
    if parts[0] == "signals":
        return config.signals[int(parts[1])].code
    if parts[0] == "unanswered_penalty":
        return config.unanswered_penalty.code
    if parts[0] == "scale":
        return parts[1]
    if parts[1] == "customer":
        return "purchased_recently"
    return {"last_inbound_points": "last_inbound", "touch_points": "touches"}.get(
        parts[1], parts[1]
    )
