"""Lead benchmark: on lead portals with a known truth (sandbox/leads.py), how do the default and
the calibrated temperature rank who converts, against a logistic regression on the true features?

    python benchmarks/leads.py [--contacts 8000] [--seeds 0 1 2]

Per seed: a portal of `--contacts` leads arriving over 142 days, scored as of its last as-of day
(2026-10-01); the outcome is a won deal in the next 14 days. `calibrate` sees the tables up to
the as-of day only (features as of 14, 28 and 42 days before it, outcomes up to it). The true-LR
reference is scikit-learn's LogisticRegression fitted on the truth's own features of the open
leads at the same cuts. ROC AUC is reported on the open leads (not converted before the as-of
day; the truth is a model of leads) and on every contact (what the backtest sees). Bands: counts
and conversion, the AUC of the three bands alone and of the best three-band split of the same
score. Per-signal lift of the default config shows which signals the truth has upside down.
`--half-life DAYS` gives the truth one half-life for every feature instead of heatsync's (which
`calibrate` does not learn), to see what a wrong half-life costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.leads import LeadPortal, generate_leads
from scoring import load_config, score_contacts
from scoring.backtest import backtest, roc_auc
from scoring.calibrate import band_auc, calibrate_report, choose_thresholds


def true_lr_auc(p: LeadPortal, cuts: list[pd.Timestamp]) -> tuple[float, float]:
    """(AUC of the true-feature LR fitted on the cuts, AUC of the true model itself) on the open
    leads at as_of."""
    x = [p.true_features(c)[p.open_leads(c)] for c in cuts]
    y = [p.converted(c)[p.open_leads(c)] for c in cuts]
    model = LogisticRegression(C=1.0, max_iter=3000).fit(pd.concat(x), np.concatenate(y))
    m = p.open_leads()
    feats, out = p.true_features()[m], p.converted()[m]
    return (
        roc_auc(model.decision_function(feats), out) or 0.0,
        roc_auc(p.truth.logit(feats), out) or 0.0,
    )


def run(n: int, seed: int, half_life: dict[str, float] | None = None) -> dict[str, Any]:
    p = generate_leads(n, seed=seed, half_life=half_life)
    known = p.deals[p.deals["closed_at"] <= p.as_of]
    t = time.perf_counter()
    report = calibrate_report(p.contacts, p.activities, known, p.as_of, p.horizon_days)
    seconds = time.perf_counter() - t
    open_, y = p.open_leads(), p.converted()
    out: dict[str, Any] = {"seed": seed, "portal": p, "report": report, "seconds": seconds}
    out["true_lr"], out["oracle"] = true_lr_auc(p, report.cuts)
    for name, config in (("default", None), ("calibrated", report.config)):
        s = score_contacts(p.contacts, p.activities, p.deals, p.as_of, config=config)
        score = s["score"].to_numpy()
        cfg = config if config is not None else load_config(None)
        t_ = cfg.temperature
        _, _, best = choose_thresholds(score, y, cfg)
        out[name] = {
            "auc_open": roc_auc(score[open_], y[open_]),
            "auc_all": roc_auc(score, y),
            "bands": band_auc(score, y, t_.warm, t_.hot),
            "best_bands": best["band_auc"],
            "report": backtest(s, p.deals, p.as_of, p.horizon_days),
            "report_open": backtest(s[open_], p.deals, p.as_of, p.horizon_days),
        }
    out["open"], out["positives_open"] = int(open_.sum()), int(y[open_].sum())
    return out


def _bands(r: Any) -> str:
    b = r.by_band.set_index("band")
    return " · ".join(f"{k} {int(b.loc[k, 'n']):,} ({b.loc[k, 'rate']:.0%})" for k in b.index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=8_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--half-life",
        type=float,
        default=None,
        help="the truth's half-life in days for every feature (default: heatsync's classes)",
    )
    args = parser.parse_args()
    hl = None
    if args.half_life:
        from sandbox.leads import TRUE_HALF_LIFE

        hl = dict.fromkeys(TRUE_HALF_LIFE, args.half_life)
    for seed in args.seeds:
        r = run(args.contacts, seed, hl)
        p = r["portal"]
        print(
            f"seed {seed}: {len(p.contacts):,} contacts, {len(p.activities):,} activities; "
            f"{r['open']:,} open leads at {p.as_of:%Y-%m-%d}, {r['positives_open']:,} converted "
            f"within {p.horizon_days} days; calibrate {r['seconds']:.1f}s"
        )
        print(f"  true-feature LR {r['true_lr']:.4f} (true model {r['oracle']:.4f}), open leads")
        for name in ("default", "calibrated"):
            f = r[name]
            print(
                f"  {name}: AUC open leads {f['auc_open']:.4f}, all contacts {f['auc_all']:.4f}; "
                f"bands alone {f['bands']:.4f} (best three-band split {f['best_bands']:.4f}); "
                f"in order {f['report'].band_order_ok}"
            )
            print(f"    all: {_bands(f['report'])}")
            print(f"    open leads: {_bands(f['report_open'])}")
        t = r["report"].config.temperature
        print(f"  calibrated thresholds warm {t.warm:.0f}, hot {t.hot:.0f}; {r['report'].notes[0]}")
        lift = r["default"]["report_open"].by_signal
        print("  per-signal lift, default config, open leads:")
        print(lift.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
