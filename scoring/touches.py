"""Touch status (domain.md §3): last touch, touches in the window, next touch due by temperature.

A touch is an interaction between us and the contact through a channel (config.touches): an
outbound call whatever its outcome, a connected inbound call, an email sent or replied, an sms, a
chat message, a completed meeting. next_touch_due = local date of the last touch + the cadence for
the contact's temperature, or the local date of as_of when there was never a touch (due now).
A burning contact (segment "burning", see segments.py) that has not been touched since its latest
intent-class signal (the urgent request) is due on the local date of as_of too: its call is due
within minutes (tasks.py), so the touch is due today whatever the cadence says.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.config import ScoringConfig
from scoring.features import Prepared, local_dates
from scoring.groups import group_count, group_latest


def touches(
    prep: Prepared,
    temperature: np.ndarray,
    config: ScoringConfig,
    segment: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per contact (aligned with prep.contacts): last_touch_at, touches_30d, next_touch_due.

    `segment` (aligned likewise) makes an unanswered burning contact due today.
    """
    n = len(prep.contacts)
    a = prep.activities
    cidx = a["cidx"].to_numpy()
    stamps = a["occurred_at"].array.asi8  # UTC instants in ns
    touch = a["is_touch"].to_numpy(dtype=bool)
    last_touch_at = _latest(cidx[touch], stamps[touch], n)
    recent = touch & (a["age"] <= config.touches.window_days).to_numpy()
    count = group_count(cidx[recent], n)
    cadence = pd.Series(temperature).map(config.touches.cadence_days).to_numpy(dtype="int64")
    due = local_dates(last_touch_at, prep.tz) + pd.to_timedelta(cadence, unit="D")
    if segment is not None:
        # the latest urgent request (what made the contact burning) with no touch after it
        intent = (a["signal_class"] == "intent").to_numpy()
        urgent_at = _latest(cidx[intent], stamps[intent], n)
        answered = (last_touch_at > urgent_at).to_numpy(dtype=bool)  # False where either is NaT
        burning = np.asarray(segment == "burning", dtype=bool)
        due = due.mask(burning & ~answered)  # NaT -> the local date of as_of below
    due = due.fillna(prep.as_of_date).astype("datetime64[ns]")
    return pd.DataFrame(
        {"last_touch_at": last_touch_at.array, "touches_30d": count, "next_touch_due": due}
    )


def _latest(cidx: np.ndarray, stamps: np.ndarray, n: int) -> pd.Series:
    """Per contact 0..n-1 the latest of UTC instants (int64 ns), NaT where none."""
    latest = group_latest(cidx, stamps, n)
    return pd.Series(latest).dt.tz_localize("UTC")
