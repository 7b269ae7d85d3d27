"""The as-of of a run: the one place a day partition becomes an instant.

A day means "as of the end of that day in the portal's time zone"; the portal's today means "as
of now". A run of one portal for one day resolves this once (`AsOf.resolve`) and hands the value
to every step, so extract, scores, write-back, tasks and backtest agree on what "now" is. The
steps after scoring take the as-of the scores were computed with (`AsOf.of_scores`), never a
fresh clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd


class FutureDayError(ValueError):
    """The day is after the portal's today: there is nothing to score yet."""


def local_today(tz: str, now: pd.Timestamp) -> str:
    """The portal's calendar date at `now` (YYYY-MM-DD)."""
    return now.tz_convert(ZoneInfo(tz)).date().isoformat()


def end_of_day(day: str, tz: str) -> pd.Timestamp:
    """The last instant (UTC) of `day` in time zone `tz`."""
    next_midnight = datetime.combine(
        date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), ZoneInfo(tz)
    )
    return pd.Timestamp(next_midnight).tz_convert("UTC") - pd.Timedelta(microseconds=1)


def _utc(moment: pd.Timestamp) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


@dataclass(frozen=True)
class AsOf:
    """One portal's day as a run sees it.

    `instant` is what scoring reads up to (now for today, the day's last instant for a past day);
    `day` is the local date of the partition, `tz` the portal's time zone, `is_today` whether the
    day is the portal's today (only today writes to the CRM), and `run_at` the moment the run
    resolved it (the extract reads the CRM up to then, whatever the day).
    """

    day: str
    tz: str
    instant: pd.Timestamp
    is_today: bool
    run_at: pd.Timestamp

    @classmethod
    def resolve(cls, day: str, tz: str, now: pd.Timestamp) -> AsOf:
        """The as-of of `day` for a run at `now`; FutureDayError for a day after the portal's
        today."""
        now = _utc(now)
        today = local_today(tz, now)
        if day > today:
            raise FutureDayError(
                f"partition {day} is after the portal's today ({today} in {tz}): "
                "there is nothing to score yet"
            )
        if day == today:
            return cls(day=day, tz=tz, instant=now, is_today=True, run_at=now)
        return cls(day=day, tz=tz, instant=end_of_day(day, tz), is_today=False, run_at=now)

    @classmethod
    def today(cls, tz: str, now: pd.Timestamp) -> AsOf:
        """The as-of of the portal's today at `now`."""
        return cls.resolve(local_today(tz, _utc(now)), tz, now)

    @classmethod
    def of_scores(cls, day: str, tz: str, scores: pd.DataFrame) -> AsOf | None:
        """The as-of a day's saved scores were computed with (their `as_of` column), or None
        when they carry none (no contacts scored)."""
        if scores.empty or "as_of" not in scores.columns:
            return None
        stamps = pd.to_datetime(scores["as_of"], utc=True).dropna()
        if stamps.empty:
            return None
        instant = _utc(stamps.iloc[0])
        is_today = instant != end_of_day(day, tz)
        return cls(day=day, tz=tz, instant=instant, is_today=is_today, run_at=instant)

    def earlier(self, day: str) -> AsOf:
        """The as-of of an earlier `day` seen from this run (the backtest's scored day)."""
        return AsOf.resolve(day, self.tz, self.run_at)
