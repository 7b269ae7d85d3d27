"""scoring.explain.reasons (integer sort, texts per distinct (code, days, count), joined per
distinct prefix) gives exactly what a straightforward pandas implementation gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from scoring import load_config
from scoring.explain import reasons, render_reasons, strongest_first
from scoring.features import Prepared
from scoring.joined import join_per_group

AS_OF = pd.Timestamp("2026-11-23 14:00", tz="UTC")
CODES = [
    "site_visits",
    "email_engagement",
    "urgent_request",
    "likely_to_buy_again",
    "late_stage_deal",
    "unanswered_calls",
    "zz_unknown_code",
    "inbound_call",
]
STATUSES = np.array(["won", "open", "lost", None], dtype=object)
SEGMENTS = [None, "loyal", "fan", "key", "at_risk", "difficult", "burning", "new"]


def _reference(prep, ev, feats, segment, config, locale) -> pd.DataFrame:
    """Per contact the codes (strongest first) and top texts, with pandas sorts and group-bys."""
    r = config.reasons
    n = len(prep.contacts)
    last_pos = pd.Series(prep.memo["last_positive_days"])
    won = prep.deals[prep.deals["status"] == "won"]
    last_won = won.groupby("cidx")["closed_age"].min().reindex(pd.RangeIndex(n))
    last_pos = pd.concat([last_pos, last_won.clip(lower=0)], axis=1).min(axis=1)
    nan = pd.Series(np.nan, index=range(n))
    frames = [ev[["cidx", "code", "strength", "days", "count"]].astype({"code": object})]
    extra = [
        (
            last_pos > r.no_recent_activity_days,
            "no_recent_activity",
            -r.no_recent_activity_strength,
            last_pos,
            nan,
        ),
        (last_pos.isna(), "no_activity", -r.no_recent_activity_strength, last_pos, nan),
    ]
    for seg, code, strength, days, count in (
        (
            "at_risk",
            "overdue_vs_rhythm",
            r.overdue_vs_rhythm_strength,
            "days_since_won",
            "median_gap",
        ),
        ("difficult", "problems_reported", -r.problems_reported_strength, None, "issues"),
        ("key", "frequent_buyer", r.frequent_buyer_strength, "days_since_won", "won_window"),
        ("fan", "fan_activity", r.fan_activity_strength, None, "fan_events"),
    ):
        extra.append(
            (
                pd.Series(segment == seg),
                code,
                strength,
                nan if days is None else feats[days],
                feats[count],
            )
        )
    for mask, code, strength, days, count in extra:
        m = mask.to_numpy(dtype=bool)
        frames.append(
            pd.DataFrame(
                {
                    "cidx": np.flatnonzero(m),
                    "code": code,
                    "strength": strength,
                    "days": days.to_numpy(dtype=float)[m],
                    "count": count.to_numpy(dtype=float)[m],
                }
            )
        )
    allr = pd.concat(frames, ignore_index=True)
    allr["abs"] = allr["strength"].abs()
    allr = allr[allr["abs"] >= r.min_strength]
    allr = allr.sort_values(["cidx", "abs", "code"], ascending=[True, False, True], kind="stable")
    allr["rank"] = allr.groupby("cidx").cumcount()
    codes = allr.groupby("cidx")["code"].agg(",".join).reindex(range(n), fill_value="")
    top = allr[allr["rank"] < r.top_n].reset_index(drop=True)
    levels = (r.chance_medium, r.chance_high)
    top["text"] = render_reasons(top["code"], top["days"], top["count"], locale, levels)
    texts = top.groupby("cidx")["text"].agg("; ".join).reindex(range(n), fill_value="")
    return pd.DataFrame(
        {"reason_codes": codes.to_numpy(dtype=object), "reasons": texts.to_numpy(dtype=object)}
    )


def _inputs(seed: int, n: int, n_ev: int, text_dtype: object = object):
    rng = np.random.default_rng(seed)
    contacts = pd.DataFrame({"contact_id": [f"c{i}" for i in range(n)]})
    pairs = pd.DataFrame(
        {"cidx": rng.integers(0, max(n, 1), n_ev), "code": rng.choice(CODES, n_ev)}
    ).drop_duplicates()
    pairs = pairs.sort_values(["cidx", "code"]).reset_index(drop=True) if n else pairs.iloc[:0]
    m = len(pairs)
    ev = pd.DataFrame(
        {
            "cidx": pairs["cidx"].to_numpy(dtype=np.int64),
            "code": pairs["code"].astype(text_dtype),
            # few distinct strengths: many ties, both signs, some below min_strength
            "strength": rng.choice([-40.0, -5.0, -0.25, 0.0, 0.5, 5.0, 7.5, 40.0, 12.345], m),
            "days": rng.choice([np.nan, 0.0, 1.0, 2.0, 1.4, 30.0, 400.0], m),
            "count": rng.choice([np.nan, 0.0, 0.4, 3.0, 14.6, 15.0, 40.0, 55.5], m),
        }
    )
    feats = pd.DataFrame(
        {
            "issues": rng.integers(0, 4, n),
            "fan_events": rng.integers(0, 9, n),
            "won_window": rng.integers(0, 5, n),
            "days_since_won": rng.choice([np.nan, 0.0, 1.0, 90.0], n),
            "median_gap": rng.choice([np.nan, 30.0, 61.5], n),
        }
    )
    segment = rng.choice(np.array(SEGMENTS, dtype=object), n)
    n_deals = n // 2
    deals = pd.DataFrame(
        {
            "cidx": rng.integers(0, max(n, 1), n_deals).astype(np.int64),
            "status": pd.Series(rng.choice(STATUSES, n_deals)).astype(text_dtype),
            "closed_age": rng.choice([np.nan, -1.0, 0.0, 5.0, 45.0], n_deals),
        }
    )
    prep = Prepared(contacts, contacts.iloc[:0], deals, AS_OF, AS_OF.tz_localize(None), "UTC")
    prep.memo["last_positive_days"] = rng.choice([np.nan, 0.0, 3.0, 31.0, 200.0], n)
    return prep, ev, feats, segment


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("text_dtype", [object, "category", "string[pyarrow]"])
def test_reasons_equal_pandas_sorts_and_group_bys(seed: int, text_dtype: object) -> None:
    overrides: list[dict[str, Any]] = [
        {},
        {"reasons": {"top_n": 1}},
        {"reasons": {"min_strength": 0.0}},
        {"reasons": {"top_n": 2, "min_strength": 40.0}},
        {"reasons": {"top_n": 10, "min_strength": 6.0}},
        {"reasons": {"chance_medium": 0.0}},
    ]
    config = load_config(overrides[seed])
    prep, ev, feats, segment = _inputs(seed, 300, 2000, text_dtype)
    for locale in ("en", "ru"):
        got = reasons(prep, ev, feats, segment, config, locale)
        expected = _reference(prep, ev, feats, segment, config, locale)
        pd.testing.assert_frame_equal(got, expected)
        assert (got["reason_codes"] != "").any()


def test_reasons_of_no_contacts_and_of_no_evidence() -> None:
    config = load_config(None)
    prep, ev, feats, segment = _inputs(1, 0, 0)
    got = reasons(prep, ev, feats, segment, config, "en")
    assert len(got) == 0 and list(got.columns) == ["reason_codes", "reasons"]
    prep, ev, feats, segment = _inputs(2, 50, 0)
    got = reasons(prep, ev, feats, segment, config, "en")
    pd.testing.assert_frame_equal(got, _reference(prep, ev, feats, segment, config, "en"))


def test_join_per_group_equals_str_join() -> None:
    rng = np.random.default_rng(3)
    labels = np.array(["a", "b", "", "a,b", "ccc"], dtype=object)
    group = np.sort(rng.integers(0, 400, 3000))
    value = rng.integers(0, len(labels), len(group))
    got = join_per_group(group, value, labels, ", ", 500)
    frame = pd.DataFrame({"g": group, "t": labels[value]})
    expected = frame.groupby("g")["t"].agg(", ".join).reindex(range(500), fill_value="")
    assert got.tolist() == expected.tolist()
    assert got[group.max() + 1 :].tolist() == [""] * (499 - group.max())


def test_strongest_first_puts_nan_last_and_minus_zero_with_zero() -> None:
    allr = pd.DataFrame(
        {
            "cidx": [0, 0, 0, 0, 0, 1, 1],
            "code": ["b", "a", "c", "a", "b", "b", "a"],
            "abs": [np.nan, 0.0, -0.0, np.nan, 2.0, 1.0, 1.0],
        }
    )
    got = strongest_first(allr)
    assert got.index.tolist() == [4, 1, 2, 3, 0, 6, 5]
    assert got["rank"].tolist() == [0, 1, 2, 3, 4, 0, 1]


@pytest.mark.parametrize("offset", [0, 2**40, 2**50])
def test_strongest_first_orders_near_equal_strengths_exactly(offset: int) -> None:
    """Strengths a few bits apart in one contact, with contact numbers that leave the packed
    sort key few bits (or too few) for the strength."""
    rng = np.random.default_rng(5)
    n = 5_000
    base = rng.choice([3.75, 35.0, 10.606601717798734, 0.5], n)
    nudge = rng.choice([0.0, 0.0, 1e-14, 2e-9, -1e-12, 1e-6], n)
    allr = pd.DataFrame(
        {
            "cidx": offset + rng.integers(0, 300, n),
            "code": rng.choice(["b", "a", "c_x", "Z", "aa"], n),
            "abs": base * (1 + nudge),
        }
    )
    expected = allr.sort_values(
        ["cidx", "abs", "code"], ascending=[True, False, True], kind="stable"
    )
    expected = expected.assign(rank=expected.groupby("cidx").cumcount())
    pd.testing.assert_frame_equal(strongest_first(allr), expected)
