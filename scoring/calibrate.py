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
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from scoring.backtest import BANDS, band_order, outcomes, roc_auc
from scoring.config import ScoringConfig, load_config
from scoring.features import Prepared, prepare, to_utc
from scoring.temperature import (
    _customer_evidence,
    _deal_evidence,
    customer_propensity,
    evidence,
    profile_terms,
    purchase_history,
    temperature,
    unanswered_penalty,
)

log = logging.getLogger("heatsync")

MIN_CONVERSIONS = 30  # fewer conversions after the latest cut: keep the given config
MIN_NONZERO = 20  # a term needs this many contacts with evidence to be learned
WINDOWS = 3  # cuts of history stacked for the fit (the latest and up to two earlier)
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # inverse L2 strengths tried by the time-based validation
DEFAULT_C = 0.3
ODDS_POINTS = 20.0  # learned points: 20 points double the odds of converting
# _mapping: score 0 at FLOOR x the base rate or MARGIN x the range below the lowest log-odds;
# the spreads tried (x the 99.5th percentile of the log-odds above score 0)
FLOOR, MARGIN = 0.01, 0.05
MAP_SPREADS = (0.05, 0.08, 0.12, 0.18, 0.25, 0.33, 0.5, 0.75, 1.0, 1.5, 2.0)
BAND_CUTS = 1
HOT_LIFT = 2.0  # the hot band must convert at least this many times the base rate
MIN_BAND_SHARE = 0.02  # each band holds at least this share of the contacts

# grid for the customer term (step 4)
PRIOR_REPEATS = (0.5, 1.0, 2.0)
PRIOR_DAYS = (60.0, 120.0, 240.0, 480.0)
STAY = (0.2, 0.35, 0.5, 0.65, 0.8)
VALUE_EXPONENTS = (0.0, 0.1, 0.2, 0.3)
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


def _scores(prep: Prepared, config: ScoringConfig) -> np.ndarray:
    return np.asarray(temperature(prep, evidence(prep, config), config)["score"], dtype=float)


def band_auc(score: np.ndarray, y: np.ndarray, warm: float, hot: float) -> float | None:
    """ROC AUC of the three bands (cold < warm <= score < hot <= score) used as the only score."""
    band = np.select([score >= hot, score >= warm], [2.0, 1.0], default=0.0)
    return roc_auc(band, y)


def choose_thresholds(
    score: np.ndarray, y: np.ndarray, config: ScoringConfig
) -> tuple[float, float, dict[str, Any]]:
    """(warm, hot) by the rule of the module docstring (step 8), and the figures behind it."""
    y = np.asarray(y, dtype=bool)
    t = config.temperature
    keep = float(t.warm), float(t.hot), {"rule": "kept", "band_auc": None}
    n, pos = len(y), int(y.sum())
    if n == 0 or pos == 0 or pos == n:
        return keep
    s = np.clip(np.asarray(score, dtype=float), 0, 100).round().astype("int64")
    # per whole score: contacts and conversions; cumulative from the top
    cnt = np.bincount(s, minlength=101)[:101].astype(float)
    cpos = np.bincount(s, weights=y.astype(float), minlength=101)[:101]
    above_n = np.cumsum(cnt[::-1])[::-1]  # contacts with score >= k
    above_p = np.cumsum(cpos[::-1])[::-1]
    neg = n - pos
    base = pos / n
    best: tuple[float, int, int] | None = None
    ks = np.arange(1, 101)
    for w in ks:
        for h in ks[ks > w]:
            nh, ph = above_n[h], above_p[h]
            nw, pw = above_n[w] - nh, above_p[w] - ph
            nc, pc = n - nh - nw, pos - ph - pw
            if min(nh, nw, nc) < MIN_BAND_SHARE * n:
                continue
            rh, rw, rc = ph / nh, pw / nw, pc / nc
            if not (rh > rw > rc and rh >= HOT_LIFT * base):
                continue
            qh, qw, qc = nh - ph, nw - pw, nc - pc  # non-converted per band
            auc = (ph * (qw + qc) + pw * qc + 0.5 * (ph * qh + pw * qw + pc * qc)) / (pos * neg)
            if best is None or auc > best[0] + 1e-12:
                best = (float(auc), int(w), int(h))
    if best is None:
        return keep
    return float(best[1]), float(best[2]), {"rule": "best band AUC", "band_auc": best[0]}


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
