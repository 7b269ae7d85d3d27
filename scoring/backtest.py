"""Backtest: did the contacts scored as of a date do what their temperature said?

`backtest(scores, deals, as_of, horizon_days)` takes the scores of one run (contract.SCORES, at
least portal, contact_id, score, temperature, segment) and the deals table, and marks a contact
converted when it has a won deal with closed_at in (as_of, as_of + horizon_days] (a won deal
without closed_at counts at its created_at, as in scoring). It reports conversion by temperature
band and by segment, the ROC AUC of `score` (Mann-Whitney on average ranks, so ties count a half),
the ROC curve, a calibration table over 10-point score bins, the lift of hot over cold, whether
the bands convert in order (hot > warm > cold), and per-signal lift (`by_signal`: the conversion
of contacts with and without each reason code, so that a signal that predicts not buying shows).
Pure pandas/numpy; no I/O.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract
from scoring.features import to_utc

DEFAULT_PORTAL = "default"
BANDS = ("hot", "warm", "cold")
# a band takes part in the hot > warm > cold check only with at least this many contacts
MIN_BAND_N = 30
# by_segment's row for contacts without a segment
NO_SEGMENT = "none"


@dataclass(frozen=True)
class BacktestReport:
    """The figures of one backtest. Rates are fractions (0-1); undefined figures are None.

    `auc` is None when nobody or everybody converted; `lift_hot_over_cold` is the hot band's
    conversion rate over the cold band's: None when either band is empty, inf when cold never
    converted but hot did.
    """

    as_of: pd.Timestamp
    horizon_days: int
    n: int
    positives: int
    base_rate: float | None
    auc: float | None
    lift_hot_over_cold: float | None
    by_band: pd.DataFrame  # band, n, converted, rate (hot, warm, cold; rate NaN if n == 0)
    by_segment: pd.DataFrame  # segment, n, converted, rate (segments present; "none" last)
    calibration: pd.DataFrame  # bin, n, mean_score, rate (non-empty 10-point bins)
    roc: pd.DataFrame  # fpr, tpr, threshold (from (0, 0) to (1, 1))
    band_order_ok: bool
    min_band_n: int = MIN_BAND_N
    outcomes: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    # per reason code: signal, n_with, converted_with, rate_with, rate_without, lift
    by_signal: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe figures (NaN and inf become None), e.g. for Dagster metadata."""
        return {
            "as_of": self.as_of.isoformat(),
            "horizon_days": int(self.horizon_days),
            "n": int(self.n),
            "positives": int(self.positives),
            "base_rate": _json_number(self.base_rate),
            "auc": _json_number(self.auc),
            "lift_hot_over_cold": _json_number(self.lift_hot_over_cold),
            "band_order_ok": bool(self.band_order_ok),
            "min_band_n": int(self.min_band_n),
            "by_band": _records(self.by_band),
            "by_segment": _records(self.by_segment),
            "calibration": _records(self.calibration),
            "roc": _records(self.roc[["fpr", "tpr"]]),
            "by_signal": _records(self.by_signal),
        }


def _json_number(value: Any) -> float | int | None:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return None
    return int(number) if isinstance(value, (int, np.integer)) else round(number, 6)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append(
            {
                k: (_json_number(v) if isinstance(v, (int, float, np.number)) else v)
                for k, v in row.items()
            }
        )
    return out


def _scores_and_outcomes(
    score: np.ndarray, outcome: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Scores as floats with NaN ranked lowest, outcomes as bools, and the class counts."""
    y = np.asarray(outcome, dtype=bool)
    s = np.asarray(score, dtype=float)
    s = np.where(np.isnan(s), -np.inf, s)
    n_pos = int(y.sum())
    return s, y, n_pos, len(y) - n_pos


def roc_auc(score: np.ndarray, outcome: np.ndarray) -> float | None:
    """Rank-based ROC AUC (ties count a half); None without both classes. NaN scores rank lowest."""
    s, y, n_pos, n_neg = _scores_and_outcomes(score, outcome)
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(score: np.ndarray, outcome: np.ndarray) -> pd.DataFrame:
    """ROC points (fpr, tpr, threshold): one per distinct score, highest first, from (0, 0)."""
    s, y, n_pos, n_neg = _scores_and_outcomes(score, outcome)
    if n_pos == 0 or n_neg == 0:
        return pd.DataFrame({"fpr": [], "tpr": [], "threshold": []}, dtype=float)
    g = (
        pd.DataFrame({"s": s, "pos": y.astype("int64"), "neg": (~y).astype("int64")})
        .groupby("s", sort=True)[["pos", "neg"]]
        .sum()
        .iloc[::-1]
    )
    tpr = np.r_[0.0, g["pos"].cumsum().to_numpy() / n_pos]
    fpr = np.r_[0.0, g["neg"].cumsum().to_numpy() / n_neg]
    thr = np.r_[np.inf, g.index.to_numpy(dtype=float)]
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})


def outcomes(
    scores: pd.DataFrame, deals: pd.DataFrame, as_of: pd.Timestamp | str, horizon_days: int
) -> np.ndarray:
    """Per row of `scores`: True when the contact won a deal in (as_of, as_of + horizon_days]."""
    start = to_utc(as_of)
    end = start + pd.Timedelta(days=horizon_days)
    d = contract.conform(deals, "deals")
    closed = d["closed_at"].where(d["closed_at"].notna(), d["created_at"])
    won = d[(d["status"] == "won") & (closed > start) & (closed <= end)]
    keys = pd.MultiIndex.from_arrays(
        [won["portal"].fillna(DEFAULT_PORTAL), won["contact_id"]]
    ).unique()
    probe = pd.MultiIndex.from_arrays(
        [scores["portal"].fillna(DEFAULT_PORTAL), scores["contact_id"]]
    )
    return np.asarray(probe.isin(keys), dtype=bool)


def _rates(keys: pd.Series, y: np.ndarray, name: str, order: list[str]) -> pd.DataFrame:
    g = (
        pd.DataFrame({name: keys.to_numpy(), "y": y.astype("int64")})
        .groupby(name, sort=False)["y"]
        .agg(n="size", converted="sum")
        .reindex(order)
        .fillna(0)
        .astype("int64")
        .reset_index()
    )
    g["rate"] = np.where(g["n"] > 0, g["converted"] / g["n"].where(g["n"] > 0, 1), np.nan)
    return g


def _calibration(score: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    lo = np.clip(np.floor(np.nan_to_num(score, nan=0.0) / 10.0), 0, 9).astype("int64")
    g = (
        pd.DataFrame({"lo": lo, "score": score, "y": y.astype("int64")})
        .groupby("lo", sort=True)
        .agg(n=("y", "size"), mean_score=("score", "mean"), rate=("y", "mean"))
        .reset_index()
    )
    g.insert(0, "bin", g["lo"].map(lambda b: f"{b * 10}-{b * 10 + 10}"))
    return g[["bin", "n", "mean_score", "rate"]]


SIGNAL_COLUMNS = ["signal", "n_with", "converted_with", "rate_with", "rate_without", "lift"]


def signal_lift(reason_codes: pd.Series, y: np.ndarray) -> pd.DataFrame:
    """Per reason code (a signal the contact showed at the as-of day, as listed in
    `reason_codes`): how many contacts had it, how many of them converted, their conversion rate,
    the rate of the contacts without it, and the lift (with / without; inf when none without it
    converted, NaN when everyone has it). A lift below 1 for evidence that earns points is a
    signal that predicts NOT buying on this portal. Highest lift first."""
    y = np.asarray(y, dtype=bool)
    n, pos = len(y), int(y.sum())
    codes = reason_codes.reset_index(drop=True).fillna("").astype(str).str.split(",").explode()
    codes = codes[codes != ""]
    if not len(codes):
        return pd.DataFrame({c: [] for c in SIGNAL_COLUMNS})
    pairs = pd.DataFrame({"signal": codes.to_numpy(), "row": codes.index.to_numpy()})
    pairs = pairs.drop_duplicates()
    pairs["y"] = y[pairs["row"].to_numpy(dtype="int64")].astype("int64")
    g = pairs.groupby("signal", sort=True)["y"].agg(n_with="size", converted_with="sum")
    g = g.reset_index()
    n_without = n - g["n_with"]
    g["rate_with"] = g["converted_with"] / g["n_with"]
    with np.errstate(divide="ignore", invalid="ignore"):
        without = np.where(n_without > 0, (pos - g["converted_with"]) / n_without, np.nan)
        g["rate_without"] = without
        lift = np.where(without > 0, g["rate_with"] / without, np.nan)
        lift = np.where((without == 0) & (g["rate_with"] > 0), np.inf, lift)
    g["lift"] = lift
    g = g.sort_values(["lift", "n_with"], ascending=[False, False], na_position="last")
    return g[SIGNAL_COLUMNS].reset_index(drop=True)


def band_order(by_band: pd.DataFrame, min_band_n: int = MIN_BAND_N) -> bool:
    """True unless a hotter band converts no better than a colder one, among the bands with at
    least `min_band_n` contacts (fewer than two such bands, or no conversions at all: True)."""
    b = by_band.set_index("band")
    rates = [float(b.loc[x, "rate"]) for x in BANDS if x in b.index and b.loc[x, "n"] >= min_band_n]
    if len(rates) < 2 or b["converted"].sum() == 0:
        return True
    return all(h > c for h, c in itertools.pairwise(rates))


def backtest(
    scores: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    min_band_n: int = MIN_BAND_N,
) -> BacktestReport:
    """Compare the scores of one run as of `as_of` with who won a deal in the next horizon_days.

    `scores` needs portal, contact_id, score, temperature and segment (score_contacts' output);
    `deals` is the canonical deals table (events up to as_of + horizon_days are used; later ones
    are ignored). See the module docstring for the figures.
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    s = scores.reset_index(drop=True)
    for col in ("portal", "contact_id", "score", "temperature", "segment"):
        if col not in s.columns:
            if col == "portal":
                s = s.assign(portal=DEFAULT_PORTAL)
                continue
            raise ValueError(f"scores: missing column {col!r}")
    y = outcomes(s, deals, as_of, horizon_days)
    score = pd.to_numeric(s["score"], errors="coerce").to_numpy(dtype=float)
    n = len(s)
    positives = int(y.sum())
    by_band = _rates(s["temperature"], y, "band", list(BANDS))
    segment = s["segment"].where(s["segment"].notna() & (s["segment"] != ""), NO_SEGMENT)
    present = set(segment)
    segs = [x for x in contract.SEGMENTS if x in present]
    segs += sorted(present - set(segs) - {NO_SEGMENT})
    segs += [NO_SEGMENT] if NO_SEGMENT in present else []
    by_segment = _rates(segment, y, "segment", segs)
    rate = by_band.set_index("band")["rate"]
    hot, cold = rate["hot"], rate["cold"]
    if np.isnan(hot) or np.isnan(cold):
        lift: float | None = None
    elif cold == 0:
        lift = math.inf if hot > 0 else None
    else:
        lift = float(hot / cold)
    return BacktestReport(
        as_of=to_utc(as_of),
        horizon_days=int(horizon_days),
        n=n,
        positives=positives,
        base_rate=positives / n if n else None,
        auc=roc_auc(score, y),
        lift_hot_over_cold=lift,
        by_band=by_band,
        by_segment=by_segment,
        calibration=_calibration(score, y),
        roc=roc_curve(score, y),
        band_order_ok=band_order(by_band, min_band_n),
        min_band_n=min_band_n,
        outcomes=pd.DataFrame(
            {"portal": s["portal"], "contact_id": s["contact_id"], "score": score, "converted": y}
        ),
        by_signal=(
            signal_lift(s["reason_codes"], y)
            if "reason_codes" in s.columns
            else pd.DataFrame({c: [] for c in SIGNAL_COLUMNS})
        ),
    )
