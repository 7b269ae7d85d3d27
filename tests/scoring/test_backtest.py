"""scoring.backtest: outcomes window, AUC with ties, bands, lift, calibration, JSON-safety."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scoring.backtest import BacktestReport, backtest, roc_auc, roc_curve

AS_OF = pd.Timestamp("2026-01-01", tz="UTC")


def scores(rows: list[tuple[str, float, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["contact_id", "score", "temperature", "segment"]).assign(
        portal="p"
    )


def deals(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["contact_id", "status", "closed_at"]).assign(portal="p")
    out["closed_at"] = pd.to_datetime(out["closed_at"], utc=True, format="ISO8601")
    out["created_at"] = out["closed_at"] - pd.Timedelta(days=3)
    return out


def test_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, 200).astype(float)  # many ties
    y = rng.random(200) < 0.3 + 0.1 * s
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(s, y) == pytest.approx(pairs / (len(pos) * len(neg)))
    assert roc_auc(s, np.zeros(200, bool)) is None
    roc = roc_curve(s, y)
    assert (roc.iloc[0].fpr, roc.iloc[0].tpr) == (0.0, 0.0)
    assert (roc.iloc[-1].fpr, roc.iloc[-1].tpr) == (1.0, 1.0)
    assert np.trapezoid(roc.tpr, roc.fpr) == pytest.approx(roc_auc(s, y))


def test_outcome_window_is_after_as_of_up_to_horizon():
    sc = scores([(c, 50.0, "warm", "new") for c in "abcdef"])
    d = deals(
        [
            ("a", "won", "2026-01-01 00:00:00"),  # at as_of: known then, not an outcome
            ("b", "won", "2026-01-01 00:00:01"),  # just after: outcome
            ("c", "won", "2026-01-31 00:00:00"),  # at as_of + 30 d: outcome
            ("d", "won", "2026-01-31 00:00:01"),  # after the horizon
            ("e", "lost", "2026-01-10"),  # lost is not a conversion
            ("x", "won", "2026-01-10"),  # somebody not scored
        ]
    )
    r = backtest(sc, d, AS_OF, 30)
    assert r.outcomes.set_index("contact_id")["converted"].to_dict() == {
        "a": False,
        "b": True,
        "c": True,
        "d": False,
        "e": False,
        "f": False,
    }
    assert (r.n, r.positives, r.base_rate) == (6, 2, pytest.approx(2 / 6))
    assert r.auc == 0.5  # one score for all: every pair a tie


def band_world(n: int, hot: float, warm: float, cold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, won = [], []
    for band, rate, base in (("hot", hot, 80), ("warm", warm, 50), ("cold", cold, 10)):
        for i in range(n):
            cid = f"{band}{i}"
            rows.append((cid, base + i % 10, band, "key" if band == "hot" else "new"))
            if i < round(rate * n):
                won.append((cid, "won", "2026-01-15"))
    return scores(rows), deals(won)


def test_bands_segments_lift_and_calibration():
    sc, d = band_world(100, 0.6, 0.3, 0.1)
    r = backtest(sc, d, AS_OF, 30)
    assert isinstance(r, BacktestReport)
    by_band = r.by_band.set_index("band")
    assert list(r.by_band.columns) == ["band", "n", "converted", "rate"]
    assert by_band["n"].to_dict() == {"hot": 100, "warm": 100, "cold": 100}
    assert by_band["rate"].to_dict() == pytest.approx({"hot": 0.6, "warm": 0.3, "cold": 0.1})
    assert r.lift_hot_over_cold == pytest.approx(6.0)
    assert r.band_order_ok
    seg = r.by_segment.set_index("segment")
    assert list(r.by_segment.columns) == ["segment", "n", "converted", "rate"]
    assert seg.loc["key", "converted"] == 60 and seg.loc["new", "n"] == 200
    cal = r.calibration
    assert list(cal.columns) == ["bin", "n", "mean_score", "rate"]
    assert cal["n"].sum() == 300 and set(cal["bin"]) == {"10-20", "50-60", "80-90"}
    assert cal.set_index("bin").loc["80-90", "rate"] == pytest.approx(0.6)
    assert r.auc is not None and r.auc > 0.7
    assert list(r.roc.columns[:2]) == ["fpr", "tpr"]


def test_band_inversion_is_flagged_and_small_bands_ignored():
    sc, d = band_world(100, 0.2, 0.4, 0.1)
    assert not backtest(sc, d, AS_OF, 30).band_order_ok
    # hot with 10 contacts converts worst, but is too small to count
    sc, d = band_world(100, 0.0, 0.4, 0.1)
    small = sc[~sc["contact_id"].str.fullmatch(r"hot\d\d")]
    assert len(small[small.temperature == "hot"]) == 10
    r = backtest(small, d, AS_OF, 30)
    assert r.band_order_ok and r.lift_hot_over_cold == 0.0


def test_empty_bands_and_no_conversions_are_json_safe():
    sc = scores([("a", 80.0, "hot", "key"), ("b", 10.0, "cold", "new")])
    only_hot = backtest(sc, deals([("a", "won", "2026-01-05")]), AS_OF, 30)
    assert only_hot.lift_hot_over_cold == math.inf  # cold never converted
    assert only_hot.by_band.set_index("band").loc["warm", "n"] == 0
    none = backtest(sc, deals([]), AS_OF, 30)
    assert none.auc is None and none.positives == 0 and none.band_order_ok
    for r in (only_hot, none):
        d = r.to_dict()
        text = json.dumps(d, allow_nan=False)  # no NaN/inf anywhere
        assert json.loads(text)["n"] == 2
    assert only_hot.to_dict()["lift_hot_over_cold"] is None
    assert only_hot.to_dict()["by_band"][1]["rate"] is None  # warm: nobody in it


def test_horizon_must_be_positive():
    with pytest.raises(ValueError, match="horizon_days"):
        backtest(scores([]), deals([]), AS_OF, 0)


def test_contacts_without_a_segment_are_counted_as_none():
    sc = scores(
        [
            ("a", 80.0, "hot", "key"),
            ("b", 10.0, "cold", None),
            ("c", 20.0, "cold", None),
            ("d", 30.0, "cold", "new"),
        ]
    )
    d = deals([("b", "won", "2026-01-05"), ("a", "won", "2026-01-06")])
    r = backtest(sc, d, AS_OF, 30)
    seg = r.by_segment.set_index("segment")
    assert seg["n"].sum() == r.n == 4
    assert seg.loc["none", "n"] == 2 and seg.loc["none", "converted"] == 1
    assert r.by_segment["segment"].tolist() == ["key", "new", "none"]
    assert json.loads(json.dumps(r.to_dict()))["by_segment"][-1]["segment"] == "none"
