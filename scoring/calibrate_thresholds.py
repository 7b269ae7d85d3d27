"""The warm and hot thresholds scoring.calibrate chooses: the best-ranking three-band split.

Step 8 of the `scoring.calibrate` docstring. Re-exported by `scoring.calibrate`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.backtest import roc_auc
from scoring.config import ScoringConfig

HOT_LIFT = 2.0  # the hot band must convert at least this many times the base rate
MIN_BAND_SHARE = 0.02  # each band holds at least this share of the contacts


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
