"""calibrate: learn each portal's evidence weights from its own history, without peeking ahead.

`calibrate(contacts, activities, deals, as_of, horizon_days, config=None, split_days=None)` returns
a ScoringConfig; `calibrate_report(...)` (same arguments) also says what it did and why
(`CalibrationReport`: notes, conversions, validation figures, the learned points per term).

1. Everything after `as_of` is dropped first, so later events can never matter.
2. Cuts: the window is `split_days` (default `horizon_days`); the cuts are as_of - window,
   as_of - 2 * window, ... (up to WINDOWS). At each cut the features are computed by the scoring
   code itself (`prepare`, as of the cut) and the outcome is a won deal in (cut, cut + window].
   Nothing after a cut reaches its features (`calibration_data` returns both; tests check it).
3. Too little history: fewer than MIN_CONVERSIONS (30) conversions after the latest cut keeps the
   given config (only the customer horizon and spend reference are set) and says so.
4. Customers: the purchase-propensity parameters (config.customers) are chosen on a small grid by
   the ROC AUC of the customer term among customers at the latest cut; `value_reference` becomes
   the median spend per purchase day, and `horizon_days` the requested horizon.
5. Evidence (`design`): one column per term of the points config, valued so that a contact's points
   are the sum of term value x column: per signal rule its decayed count (`signals.<i>.points`) and
   decayed minutes (`signals.<i>.points_per_minute`: time on site, call length), the repeated
   unanswered calls penalty, the open deal (late stage, earlier stage by its probability), the
   recent purchase and the customer term (`scale.<code>`: the current points, to be rescaled), and
   the profile: source, lifecycle stage, VIP, do-not-contact, being a customer, the recency of
   the last inbound activity and our touches in the touches window. Terms seen on fewer than
   MIN_NONZERO contacts keep their points.
6. Fit: scikit-learn's L2-regularized LogisticRegression on the standardized columns, the rows of
   every usable cut stacked. Time-based validation: with two or more cuts of at least
   MIN_CONVERSIONS conversions, each C of C_GRID is fitted on the earlier cuts and judged by its
   ROC AUC on the latest one, next to the given config's AUC there (`CalibrationReport.validation`);
   the best C is then refitted on all cuts. Without an earlier usable cut, C = DEFAULT_C (a note
   says there was no time-based validation).
7. Points: the fitted log-odds become points in the config's own units: one point is worth
   `unit` log-odds, every term's points are its coefficient / unit (negative when the portal's
   history says the evidence predicts not buying), the intercept becomes `temperature.base_points`,
   and (unit, base) are chosen so that score / 100 = 1 - e^(-(base + points) / saturation) tracks
   the fitted chance of converting in the window. Caps of learned codes are removed (the data, not
   a cap, now says how much volume is worth); half-lives and intent words are not learned.
8. Bands (`choose_thresholds`): scored with the learned config at the latest cut, `warm` and `hot`
   are the pair of whole-number cut points whose three bands, used as the only score, rank the
   outcomes best (ROC AUC of the band), among the pairs where each band holds at least
   MIN_BAND_SHARE of the contacts, the bands convert in order (hot > warm > cold) and hot converts
   at least HOT_LIFT times the base rate. No such pair keeps the configured thresholds.

Reasons still name evidence in words: the learned config has the same rules and codes, with other
points. Pure; no I/O (a note is also logged to the "heatsync" logger).

The parts live beside this module, one job each, and are re-exported here so that
`from scoring.calibrate import ...` keeps naming all of it: the data and the design matrix in
`scoring.calibrate_design`, the fit and its translation into points in `scoring.calibrate_fit`,
the choice of the warm and hot thresholds in `scoring.calibrate_thresholds`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.backtest import BANDS, band_order, roc_auc
from scoring.calibrate_design import SCALED, CalibrationData, _until, calibration_data, design
from scoring.calibrate_fit import (
    FLOOR,
    MAP_SPREADS,
    MARGIN,
    MIN_NONZERO,
    PRIOR_DAYS,
    PRIOR_REPEATS,
    STAY,
    VALUE_EXPONENTS,
    _apply,
    _fit_customers,
    _fit_lr,
    _mapping,
    _term_code,
)
from scoring.calibrate_thresholds import HOT_LIFT, MIN_BAND_SHARE, band_auc, choose_thresholds
from scoring.config import ScoringConfig, load_config
from scoring.features import Prepared, prepare, to_utc
from scoring.temperature import evidence, temperature

log = logging.getLogger("heatsync")

MIN_CONVERSIONS = 30  # fewer conversions after the latest cut: keep the given config
WINDOWS = 3  # cuts of history stacked for the fit (the latest and up to two earlier)
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # inverse L2 strengths tried by the time-based validation
DEFAULT_C = 0.3
ODDS_POINTS = 20.0  # learned points: 20 points double the odds of converting
BAND_CUTS = 1

__all__ = [
    "BAND_CUTS",
    "C_GRID",
    "DEFAULT_C",
    "FLOOR",
    "HOT_LIFT",
    "MAP_SPREADS",
    "MARGIN",
    "MIN_BAND_SHARE",
    "MIN_CONVERSIONS",
    "MIN_NONZERO",
    "ODDS_POINTS",
    "PRIOR_DAYS",
    "PRIOR_REPEATS",
    "SCALED",
    "STAY",
    "VALUE_EXPONENTS",
    "WINDOWS",
    "CalibrationData",
    "CalibrationReport",
    "band_auc",
    "calibrate",
    "calibrate_report",
    "calibration_data",
    "choose_thresholds",
    "design",
]


@dataclass(frozen=True)
class CalibrationReport:
    """What `calibrate` learned and how it was judged.

    `calibrated` is False when the given config was kept (too little history); `notes` say why and
    what else to know, in words. `validation` holds the time-based check: the cut it was judged
    at, the given config's ROC AUC there (`auc_current`), the learned one's fitted on the earlier
    cuts only (`auc_calibrated`), `beats` (learned > given, and the learned bands convert in order
    at that cut: `bands_in_order`), the chosen C. `weights` has one row
    per learned term: term, code, coefficient (log-odds per unit) and points.
    """

    config: ScoringConfig
    calibrated: bool
    conversions: int
    cuts: list[pd.Timestamp]
    notes: list[str]
    validation: dict[str, Any]
    weights: pd.DataFrame
    thresholds: dict[str, Any]


def _scores(prep: Prepared, config: ScoringConfig) -> np.ndarray:
    return np.asarray(temperature(prep, evidence(prep, config), config)["score"], dtype=float)


def _check_windows(horizon_days: int, split_days: int | None) -> int:
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    window = int(split_days) if split_days is not None else int(horizon_days)
    if window <= 0:
        raise ValueError(f"split_days must be > 0, got {split_days}")
    return window


def calibrate_report(
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    config: ScoringConfig | None = None,
    split_days: int | None = None,
    tz: str = "UTC",
) -> CalibrationReport:
    """`calibrate`, with what it did and why (see CalibrationReport and the module docstring)."""
    window = _check_windows(horizon_days, split_days)
    config = config if config is not None else load_config(None)
    given = config
    end = to_utc(as_of)
    latest = calibration_data(contacts, activities, deals, end, window, config, tz)
    customers = _fit_customers(latest, config, horizon_days)
    config = ScoringConfig.model_validate({**config.model_dump(), "customers": customers})
    notes: list[str] = []
    empty = pd.DataFrame(columns=["term", "code", "coefficient", "points"])

    def kept(why: str, conversions: int, cuts: list[pd.Timestamp]) -> CalibrationReport:
        """The given config, with only the customer horizon and spend reference set."""
        notes.append(why)
        for note in notes:
            log.warning("calibrate: %s", note)
        own = {k: customers[k] for k in ("horizon_days", "value_reference")}
        same = given.model_copy(update={"customers": given.customers.model_copy(update=own)})
        same = ScoringConfig.model_validate(same.model_dump())
        return CalibrationReport(same, False, conversions, cuts, notes, {}, empty, {})

    conversions = int(latest.outcome.sum())
    span = f"(features as of {latest.cut:%Y-%m-%d}, outcomes to {end:%Y-%m-%d})"
    if conversions < MIN_CONVERSIONS:
        return kept(
            f"only {conversions} conversions {span}: too little history to learn from "
            f"(at least {MIN_CONVERSIONS} are needed); the config is kept",
            conversions,
            [latest.cut],
        )
    if conversions == len(latest.outcome):
        return kept(f"every contact converted {span}: nothing to learn", conversions, [latest.cut])

    # the cuts: the latest and up to WINDOWS - 1 earlier ones with enough conversions
    cuts = [latest]
    for k in range(2, WINDOWS + 1):
        cut = end - pd.Timedelta(days=k * window)
        earlier = calibration_data(contacts, activities, deals, end, window, config, tz, cut=cut)
        if earlier.outcome.sum() < MIN_CONVERSIONS or len(earlier.features) == 0:
            break
        cuts.append(earlier)
    latest = calibration_data(contacts, activities, deals, end, window, config, tz)
    cuts[0] = latest
    frames = [c.features for c in cuts]
    x_all = pd.concat(frames, ignore_index=True).fillna(0.0)
    y_all = np.concatenate([c.outcome for c in cuts])
    nonzero = (x_all != 0).sum()
    terms = [t for t in x_all.columns if nonzero[t] >= MIN_NONZERO and x_all[t].std() > 0]
    # a one-hot column set that covers everyone is collinear with the intercept: drop the
    # largest level as the reference (0 points)
    for key in ("profile.source.", "profile.lifecycle_stage."):
        group = [t for t in terms if t.startswith(key)]
        if group and (x_all[group].sum(axis=1) > 0).all():
            terms.remove(max(group, key=lambda t: nonzero[t]))
    if not terms:
        return kept(
            f"no evidence is seen on {MIN_NONZERO}+ contacts {span}: nothing to learn from; "
            "the config is kept",
            conversions,
            [c.cut for c in cuts],
        )
    x_all = x_all[terms]
    n_latest = len(latest.features)
    x_latest = x_all.iloc[:n_latest].to_numpy(dtype=float)
    y_latest = latest.outcome

    validation: dict[str, Any] = {}
    c_value = DEFAULT_C
    # the given config as it is (its own customer term), on the same as-of tables
    current = _scores(latest.prep, given) if latest.prep is not None else None
    older = y_all[len(latest.features) :]
    if len(cuts) >= 2 and not older.all():
        x_old = x_all.iloc[n_latest:].to_numpy(dtype=float)
        y_old = y_all[n_latest:]
        aucs = {}
        for c in C_GRID:
            w, b = _fit_lr(x_old, y_old, c)
            # judged as a rep would see it: whole-number scores on the learned scale
            val = x_latest @ w + b
            off, v = _mapping(val, float(np.mean(y_latest)))
            shown = np.floor(100.0 * (1.0 - np.exp(-np.clip(val - off, 0, None) / v)) + 0.5)
            aucs[c] = roc_auc(shown, y_latest) or 0.0
        c_value = max(aucs, key=lambda c: (aucs[c], -c))
        auc_current = roc_auc(current, y_latest) if current is not None else None
        validation = {
            "cut": latest.cut,
            "fitted_on": [c.cut for c in cuts[1:]],
            "auc_current": auc_current,
            "auc_calibrated": aucs[c_value],
            "beats": auc_current is None or aucs[c_value] > auc_current,
            "C": c_value,
            "auc_by_C": aucs,
        }
        notes.append(
            f"time-based validation: fitted on features as of "
            f"{', '.join(f'{c.cut:%Y-%m-%d}' for c in cuts[1:])}, judged at {latest.cut:%Y-%m-%d}: "
            f"ROC AUC {aucs[c_value]:.3f} learned vs {auc_current or float('nan'):.3f} given"
        )
    else:
        notes.append(
            f"no earlier window with {MIN_CONVERSIONS}+ conversions: no time-based validation "
            f"(C = {DEFAULT_C})"
        )

    w, b = _fit_lr(x_all.to_numpy(dtype=float), y_all, c_value)
    logit = x_latest @ w + b
    offset, v = _mapping(logit, float(np.mean(y_latest)))
    unit = np.log(2.0) / ODDS_POINTS  # log-odds per point
    points = {t: float(w[i] / unit) for i, t in enumerate(terms)}
    base = (b - offset) / unit
    data, more = _apply(config, points, base)
    data["temperature"]["saturation_points"] = v / unit
    notes.extend(more)
    fitted = ScoringConfig.model_validate(data)

    # the bands: chosen on the learned config's scores at the latest BAND_CUTS cuts, pooled
    tables = _until(contacts, activities, deals, end)
    scored = [_scores(prepare(*tables, c.cut, fitted, tz), fitted) for c in cuts[:BAND_CUTS]]
    score = scored[0]
    y_bands = np.concatenate([c.outcome for c in cuts[:BAND_CUTS]])
    warm, hot, why = choose_thresholds(np.concatenate(scored), y_bands, fitted)
    temp = {**fitted.temperature.model_dump(), "warm": warm, "hot": hot}
    fitted = ScoringConfig.model_validate({**fitted.model_dump(), "temperature": temp})
    label = np.select([score >= hot, score >= warm], ["hot", "warm"], default="cold")
    by_band = (
        pd.DataFrame({"band": label, "y": y_latest.astype("int64")})
        .groupby("band")["y"]
        .agg(n="size", converted="sum", rate="mean")
        .reindex(list(BANDS))
        .fillna(0)
        .reset_index()
    )
    in_order = band_order(by_band)
    bands = {
        "warm": warm,
        "hot": hot,
        **why,
        "auc": roc_auc(score, y_latest),
        "base_rate": float(np.mean(y_latest)),
        "in_order": in_order,
    }
    if validation:
        validation["bands_in_order"] = in_order
        validation["beats"] = bool(validation["beats"] and in_order)
    if why["rule"] == "kept":
        notes.append(
            "no three bands convert in order with a hot band at 2x the base rate: "
            "the thresholds are kept"
        )
    codes = {t: _term_code(t, config) for t in terms}
    weights = pd.DataFrame(
        {
            "term": terms,
            "code": [codes[t] for t in terms],
            "coefficient": w,
            "points": [points[t] for t in terms],
        }
    )
    return CalibrationReport(
        config=fitted,
        calibrated=True,
        conversions=conversions,
        cuts=[c.cut for c in cuts],
        notes=notes,
        validation=validation,
        weights=weights,
        thresholds=bands,
    )


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

    Features as of as_of - (split_days or horizon_days) and earlier cuts, outcomes up to as_of;
    nothing after as_of is read. With fewer than MIN_CONVERSIONS conversions the given config is
    kept (only the customer horizon and spend reference are set) and a warning is logged;
    `calibrate_report` returns the notes too.
    """
    return calibrate_report(
        contacts, activities, deals, as_of, horizon_days, config, split_days, tz
    ).config
