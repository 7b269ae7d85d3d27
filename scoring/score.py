"""score_contacts: temperature, segment, reasons, trend and touch status per contact, as of a date.

Pure function over the canonical tables (scoring/contract.py); see the module docstrings of
features (as-of rules), temperature, segments, touches and explain for each part.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from scoring import contract
from scoring.codes import contact_rows, last_of_each_key
from scoring.config import ScoringConfig, load_config
from scoring.explain import last_positive_days, load_locale, reasons
from scoring.features import Prepared, local_midnight_utc, prepare
from scoring.segments import assign_segments, segment_features
from scoring.temperature import evidence, temperature
from scoring.touches import touches

# Columns score_contacts returns beyond contract.SCORES (copied from contacts, for plan_tasks).
EXTRA_SCORE_COLUMNS = ("owner_id", "do_not_contact")


def _previous(prep: Prepared, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Previous scores aligned with prep.contacts (all null where there is none)."""
    n = len(prep.contacts)
    cols = ["score", "temperature", "hot_since", "segment", "segment_since"]
    if previous is None or len(previous) == 0:
        prev = contract.empty("scores")[cols]
        return prev.reindex(pd.RangeIndex(n))
    prev = contract.conform(previous, "scores")
    prev = prev[last_of_each_key(prev)].reset_index(drop=True)
    pos = contact_rows(prep.contacts, prev)  # row of each contact in prev, -1 if none
    out = prev[cols].reindex(pd.Index(np.where(pos >= 0, pos, -1)))
    return out.reset_index(drop=True)


def _segments(prep: Prepared, config: ScoringConfig) -> tuple[pd.DataFrame, np.ndarray]:
    feats = segment_features(prep, config)
    segment = assign_segments(prep, feats, config)
    # the reasons need one figure from the activities: the activities (most of the memory at
    # 20M rows) are let go before the reasons are made
    last_positive_days(prep)
    return feats, segment


def score_contacts(
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp | str,
    config: ScoringConfig | None = None,
    previous: pd.DataFrame | None = None,
    locale: str = "en",
    tz: str = "UTC",
) -> pd.DataFrame:
    """Score every contact created on or before `as_of` using only what was known then.

    Returns one row per contact with the contract.SCORES columns plus `owner_id` and
    `do_not_contact`. Ages are whole local days in `tz`, so a re-run on the same local day with
    no new events gives identical rows (except `as_of`). `previous` (an earlier scores frame)
    gives trend, previous_score/temperature and carries hot_since/segment_since over.
    """
    config = config if config is not None else load_config(None)
    load_locale(locale)  # fail early on an unknown locale
    prep = prepare(contacts, activities, deals, as_of, config, tz)
    c = prep.contacts
    with ThreadPoolExecutor(1, thread_name_prefix="heatsync-score") as pool:
        # the segments are worked out beside the temperature (neither reads the other; both are
        # mostly numpy work over the activities, which lets go of the GIL)
        segmented = pool.submit(_segments, prep, config)
        ev = evidence(prep, config)
        temp = temperature(prep, ev, config)
        feats, segment = segmented.result()
        label = temp["temperature"].to_numpy()
        # the touches beside the reasons; the reasons work without the activities (most of the
        # memory at 20M rows), which go once the touches are counted
        counted = pool.submit(touches, prep, label, config, segment)
        prep = dataclasses.replace(prep, activities=prep.activities.iloc[:0].copy())  # no views
        why = reasons(prep, ev, feats, segment, config, locale)
        prev = _previous(prep, previous)
        tch = counted.result()

    midnight = local_midnight_utc(prep.as_of_date, tz)
    score = temp["score"]
    diff = score - prev["score"]
    band = config.temperature.trend_band
    trend = pd.Series(
        np.select(
            [diff > band, diff < -band, diff.notna()],
            ["warming", "cooling", "steady"],
            default="",
        ),
        dtype="object",
    ).replace("", None)
    trend = trend.where(prev["score"].notna(), None)

    hot = label == "hot"
    carry_hot = hot & (prev["temperature"] == "hot").to_numpy() & prev["hot_since"].notna()
    hot_since = prev["hot_since"].where(carry_hot, pd.Series(midnight, index=prev.index))
    hot_since = hot_since.where(hot)
    same_seg = (prev["segment"].to_numpy() == segment) & prev["segment_since"].notna()
    segment_since = prev["segment_since"].where(same_seg, pd.Series(midnight, index=prev.index))
    segment_since = segment_since.where(pd.notna(segment))

    out = pd.DataFrame(
        {
            "contact_id": c["contact_id"],
            "portal": c["portal"],
            "as_of": prep.as_of,
            "temperature": label,
            "score": score,
            "segment": segment,
            "is_vip": c["is_vip"],
            "reason_codes": why["reason_codes"],
            "reasons": why["reasons"],
            "trend": trend,
            "previous_score": prev["score"],
            "previous_temperature": prev["temperature"],
            "hot_since": hot_since,
            "segment_since": segment_since,
            "last_touch_at": tch["last_touch_at"],
            "next_touch_due": tch["next_touch_due"],
            "touches_30d": tch["touches_30d"],
            "owner_id": c["owner_id"],
            "do_not_contact": c["do_not_contact"],
        }
    )
    return contract.conform(out, "scores", extra={"owner_id": "str", "do_not_contact": "bool"})
